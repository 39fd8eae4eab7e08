#!/usr/bin/env python
"""CPU inference latency: NETNet-300 vs our SSD300, and our SSD300-VGG16 vs torchvision's ``ssd300_vgg16``.

All models are full width (VGG-16, 300x300, 91 logits incl. background as torchvision's COCO model),
randomly initialised (no downloads), batch 1, same thread count, same input picture. Post-processing is
matched: score threshold 0.01, per-class top 400 candidates, NMS 0.45, 200 detections per image.

With random weights almost every box passes the 0.01 threshold (softmax over 91 classes is ~0.011), so
the "full" time includes a heavy, equal NMS workload for both implementations; the "network" column
times backbone + (NETNet neck) + head only.

    OMP_NUM_THREADS=2 python benchmarks/bench_netnet.py --threads 2 --repeats 10
"""
import argparse
import statistics
import time

import torch


def build_ours(netnet: bool, num_classes: int = 90):
    from net_detr2.config import instantiate
    from net_detr2.config import LazyConfig

    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    name = "netnet300_vgg16_coco.py" if netnet else "ssd300_vgg16_coco.py"
    cfg = LazyConfig.load(str(root / "projects" / "NETNet" / "configs" / name))
    cfg.model.num_classes = num_classes
    cfg.model.head.num_classes = num_classes
    return instantiate(cfg.model).eval()


def build_torchvision():
    from torchvision.models.detection import ssd300_vgg16

    return ssd300_vgg16(
        weights=None, weights_backbone=None, num_classes=91,
        score_thresh=0.01, nms_thresh=0.45, detections_per_img=200, topk_candidates=400,
    ).eval()


def time_interleaved(fns: dict, warmup: int, repeats: int) -> dict:
    """Median wall time (ms) of each fn; the repeats go round-robin over the fns so that load changes
    on a shared machine hit all of them alike."""
    times = {k: [] for k in fns}
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        for _ in range(repeats):
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[k].append((time.perf_counter() - t0) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    image_bgr = torch.randint(0, 256, (3, 300, 300), dtype=torch.uint8)
    image_rgb01 = image_bgr.flip(0).float() / 255.0
    ours_in = [{"image": image_bgr, "height": 300, "width": 300}]

    ssd, netnet, tv = build_ours(False), build_ours(True), build_torchvision()
    tv_norm = lambda x: tv.transform([x])[0].tensors  # noqa: E731 (resize to 300 + normalise)

    def our_net(model):
        images = model.preprocess_image(ours_in)
        return model.head(model.extract_features(images.tensor))

    tv_net = lambda: tv.head(list(tv.backbone(tv_norm(image_rgb01)).values()))  # noqa: E731
    t = time_interleaved(
        {
            "ssd": lambda: ssd(ours_in), "netnet": lambda: netnet(ours_in), "tv": lambda: tv([image_rgb01]),
            "ssd_net": lambda: our_net(ssd), "netnet_net": lambda: our_net(netnet), "tv_net": tv_net,
        },
        args.warmup, args.repeats,
    )
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    rows = [
        ("SSD300 (ours)", t["ssd"], t["ssd_net"], params(ssd)),
        ("NETNet300 (ours)", t["netnet"], t["netnet_net"], params(netnet)),
        ("torchvision ssd300_vgg16", t["tv"], t["tv_net"], params(tv)),
    ]
    with torch.inference_mode():
        n_ours = len(ssd(ours_in)[0]["instances"])
        n_tv = len(tv([image_rgb01])[0]["boxes"])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch 1, 300x300, median of {args.repeats}")
    print(f"{'model':<26}{'full (ms)':>12}{'network (ms)':>15}{'params (M)':>12}")
    for name, full, net, params in rows:
        print(f"{name:<26}{full:>12.1f}{net:>15.1f}{params / 1e6:>12.2f}")
    print(f"NETNet300 / SSD300 (ours): full {rows[1][1] / rows[0][1]:.3f}, network {rows[1][2] / rows[0][2]:.3f}  (goal <= 1.10)")
    print(f"SSD300 ours / torchvision: full {rows[0][1] / rows[2][1]:.3f}, network {rows[0][2] / rows[2][2]:.3f}  (goal <= 1.0)")
    print(f"detections on the random-weight input: ours {n_ours}, torchvision {n_tv}")


if __name__ == "__main__":
    main()
