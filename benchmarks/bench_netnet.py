#!/usr/bin/env python
"""CPU inference latency: NETNet-300 vs our SSD300, and our SSD300-VGG16 vs torchvision's ``ssd300_vgg16``.

All models are full width (VGG-16, 300x300, 91 logits incl. background as torchvision's COCO model),
randomly initialised (no downloads), batch 1, same thread count, same input picture. Post-processing is
matched: score threshold 0.01, per-class top 400 candidates, NMS 0.45, 200 detections per image.

With random weights the class scores sit around the 0.01 threshold (softmax over 91 classes is ~0.011), so
how many (box, class) candidates pass it, and with them the NMS work of the "full" column, depends on
each network's arbitrary random outputs (the script prints the counts). The "network" column times
backbone + (NETNet neck) + head only, and "network + same post" adds one post-processing time measured
on SSD300's head outputs, so that the NETNet / SSD ratio compares only what NETNet changes (both models
share the post-processing code).

    OMP_NUM_THREADS=2 python benchmarks/bench_netnet.py --threads 2 --repeats 10
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def build_ours(netnet: bool, num_classes: int = 90):
    from pathlib import Path

    from net_detr2.config import LazyConfig, instantiate

    root = Path(__file__).resolve().parents[1]
    name = "netnet300_vgg16_coco.py" if netnet else "ssd300_vgg16_coco.py"
    cfg = LazyConfig.load(str(root / "projects" / "NETNet" / "configs" / name))
    cfg.model.num_classes = num_classes
    cfg.model.head.num_classes = num_classes
    return instantiate(cfg.model).eval()


def build_torchvision():
    from torchvision.models.detection import ssd300_vgg16

    return ssd300_vgg16(
        weights=None,
        weights_backbone=None,
        num_classes=91,
        score_thresh=0.01,
        nms_thresh=0.45,
        detections_per_img=200,
        topk_candidates=400,
    ).eval()


def time_interleaved(fns: dict, warmup: int, repeats: int) -> dict:
    """Wall times (ms) of each fn, one list per fn; the repeats go round-robin over the fns so that load
    changes on a shared machine hit all of them alike, and entry i of every list is from round i."""
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
    return times


def paired_ratio(numerator: list, denominator: list) -> float:
    """Median over rounds of the per-round ratio: each pair ran back to back, under the same load."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))


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

    def post_inputs(model):
        """(priors, cls_logits, box_deltas, image_sizes) of one inference pass, for `SSD.inference`."""
        with torch.inference_mode():
            images = model.preprocess_image(ours_in)
            features = model.extract_features(images.tensor)
            cls_logits, box_deltas = model.head(features)
            priors = model.prior_generator([f.shape[-2:] for f in features], images.tensor.shape[-2:])
        return priors, cls_logits, box_deltas, images.image_sizes

    def candidates(model) -> int:
        _, cls_logits, _, _ = post_inputs(model)
        return int((cls_logits.softmax(-1)[..., : model.num_classes] > model.test_score_thresh).sum())

    ssd_post_inputs = post_inputs(ssd)

    tv_net = lambda: tv.head(list(tv.backbone(tv_norm(image_rgb01)).values()))  # noqa: E731
    rounds = time_interleaved(
        {
            "ssd": lambda: ssd(ours_in),
            "netnet": lambda: netnet(ours_in),
            "tv": lambda: tv([image_rgb01]),
            "ssd_net": lambda: our_net(ssd),
            "netnet_net": lambda: our_net(netnet),
            "tv_net": tv_net,
            "post": lambda: ssd.inference(*ssd_post_inputs),
        },
        args.warmup,
        args.repeats,
    )
    t = {k: statistics.median(v) for k, v in rounds.items()}
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
    print(
        f"post-processing on SSD300's head outputs: {t['post']:.1f} ms; (box, class) candidates above the "
        f"score threshold: SSD300 {candidates(ssd)}, NETNet300 {candidates(netnet)}"
    )
    with_post = {k: [a + b for a, b in zip(rounds[k], rounds["post"])] for k in ("ssd_net", "netnet_net")}
    print("ratios: median over the rounds of the per-round ratio (each pair ran back to back)")
    print(
        f"NETNet300 / SSD300 (ours): full {paired_ratio(rounds['netnet'], rounds['ssd']):.3f}, "
        f"network {paired_ratio(rounds['netnet_net'], rounds['ssd_net']):.3f}, "
        f"network + same post {paired_ratio(with_post['netnet_net'], with_post['ssd_net']):.3f}  (goal <= 1.10)"
    )
    print(
        f"SSD300 ours / torchvision: full {paired_ratio(rounds['ssd'], rounds['tv']):.3f}, "
        f"network {paired_ratio(rounds['ssd_net'], rounds['tv_net']):.3f}  (goal <= 1.0)"
    )
    print(f"detections on the random-weight input: ours {n_ours}, torchvision {n_tv}")


if __name__ == "__main__":
    main()
