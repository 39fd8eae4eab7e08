"""CPU inference latency of our Faster R-CNN / RetinaNet R50-FPN vs torchvision's, side by side.

Models (random weights, seed 0, eval mode, ``torch.no_grad()``):
  * ours: ``configs/common/models/faster_rcnn_fpn.py`` and ``retinanet.py`` (detectron2's defaults:
    FrozenBN ResNet-50, FPN 256, RPN 1000 pre/post-NMS proposals at test, 100 detections);
  * torchvision: ``fasterrcnn_resnet50_fpn`` / ``retinanet_resnet50_fpn`` (``weights=None,
    weights_backbone=None``) with ``min_size=800, max_size=1216`` so that the 800x1216 input is not
    resized, and the same test settings (1000 RPN proposals before/after NMS, score threshold 0.05,
    100 detections, RetinaNet 1000 candidates per level).
Both get the same 800x1216 picture (a smooth gradient with random rectangles; ours as a BGR uint8
tensor, torchvision as an RGB float tensor in [0, 1]), batch of one, score threshold 0.05.

Latency: median over ``--runs`` passes after ``--warmup`` passes, with ``torch.set_num_threads(--threads)``
for all models; the models are interleaved pass by pass so that other load on a shared machine hits them
alike. Also reported: the median process CPU time of a pass, and the number of proposals/detections.
Ours' Fast R-CNN predictor is re-initialised like torchvision's (nn.Linear default), so that similar
numbers of boxes pass the score threshold. Note: torchvision without pretrained weights uses plain
BatchNorm2d in eval mode; ours uses FrozenBN folded into the convolutions (detectron2's layout for
ImageNet-initialised backbones).

Usage: ``OMP_NUM_THREADS=2 python benchmarks/bench_baselines.py [--threads 2] [--runs 3] [--warmup 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

H, W = 800, 1216
SCORE_THRESH = 0.05
DETS = 100


def _image() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    ys = torch.linspace(0, 1, H)[:, None]
    xs = torch.linspace(0, 1, W)[None, :]
    img = torch.stack([80 + 100 * ys + 0 * xs, 60 + 120 * xs + 0 * ys, 200 - 100 * ys * xs])
    for _ in range(15):
        x0, y0 = int(torch.randint(0, W - 200, (1,), generator=g)), int(torch.randint(0, H - 200, (1,), generator=g))
        w, h = int(torch.randint(20, 200, (1,), generator=g)), int(torch.randint(20, 200, (1,), generator=g))
        img[:, y0 : y0 + h, x0 : x0 + w] = torch.randint(0, 256, (3, 1, 1), generator=g).float()
    return img.clamp(0, 255).to(torch.uint8)  # BGR


def build_ours(kind: str):
    from net_detr2.config import LazyConfig, instantiate

    cfg = LazyConfig.load(str(ROOT / f"configs/common/models/{kind}.py"))
    if kind == "faster_rcnn_fpn":
        cfg.model.roi_heads.box_predictor.test_score_thresh = SCORE_THRESH
        cfg.model.roi_heads.box_predictor.test_topk_per_image = DETS
    else:
        cfg.model.test_score_thresh = SCORE_THRESH
        cfg.model.max_detections_per_image = DETS
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    if kind == "faster_rcnn_fpn":
        # torchvision's box predictor keeps nn.Linear's default init; ours is detectron2's (std 0.01 logits
        # = near-uniform softmax, nothing above 0.05). Use the same init so that both models pass a
        # comparable number of boxes through the score threshold and NMS.
        model.roi_heads.box_predictor.cls_score.reset_parameters()
        model.roi_heads.box_predictor.bbox_pred.reset_parameters()
    return model


def build_torchvision(kind: str):
    from torchvision.models import detection

    torch.manual_seed(0)
    common = dict(weights=None, weights_backbone=None, min_size=H, max_size=W)
    if kind == "faster_rcnn_fpn":
        m = detection.fasterrcnn_resnet50_fpn(
            **common,
            rpn_pre_nms_top_n_test=1000,
            rpn_post_nms_top_n_test=1000,
            box_score_thresh=SCORE_THRESH,
            box_nms_thresh=0.5,
            box_detections_per_img=DETS,
        )
    else:
        m = detection.retinanet_resnet50_fpn(
            **common,
            score_thresh=SCORE_THRESH,
            nms_thresh=0.5,
            detections_per_img=DETS,
            topk_candidates=1000,
        )
    return m.eval()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument(
        "--models", nargs="+", default=["faster_rcnn_fpn", "retinanet"], choices=["faster_rcnn_fpn", "retinanet"]
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    bgr = _image()
    ours_in = [{"image": bgr, "height": H, "width": W}]
    tv_in = [bgr.flip(0).float() / 255.0]
    print(
        f"input {H}x{W}, threads {torch.get_num_threads()}, warm-up {args.warmup}, runs {args.runs}, "
        f"torch {torch.__version__}"
    )
    rows = []
    for kind in args.models:
        models = {"ours": (build_ours(kind), ours_in), "torchvision": (build_torchvision(kind), tv_in)}
        wall = {k: [] for k in models}
        cpu = {k: [] for k in models}
        ndet = {}
        with torch.no_grad():
            for it in range(args.warmup + args.runs):
                for name, (model, inp) in models.items():
                    t0, c0 = time.perf_counter(), time.process_time()
                    out = model(inp)
                    t1, c1 = time.perf_counter(), time.process_time()
                    if it >= args.warmup:
                        wall[name].append(t1 - t0)
                        cpu[name].append(c1 - c0)
                    ndet[name] = len(out[0]["instances"]) if name == "ours" else len(out[0]["boxes"])
        med = {k: statistics.median(v) for k, v in wall.items()}
        cmed = {k: statistics.median(v) for k, v in cpu.items()}
        rows.append((kind, med, cmed, ndet))
        print(
            f"{kind:16s} ours {med['ours']:.3f} s (cpu {cmed['ours']:.2f} s, {ndet['ours']} dets) | "
            f"torchvision {med['torchvision']:.3f} s (cpu {cmed['torchvision']:.2f} s, {ndet['torchvision']} dets) | "
            f"ratio ours/tv {med['ours'] / med['torchvision']:.2f} (cpu {cmed['ours'] / cmed['torchvision']:.2f})",
            flush=True,
        )
        del models
    return rows


if __name__ == "__main__":
    main()
