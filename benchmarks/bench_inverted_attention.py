#!/usr/bin/env python
"""Cost of Inverted Attention: training-iteration time and inference latency, IA vs the baseline.

Both models are built from the same IA config; the baseline is that config with the ROI heads'
target set back to `StandardROIHeads` (IA arguments removed), and it gets the IA model's weights.
Same inputs (random images with two ground-truth boxes each, fixed seed), same RNG seed before
every call; measurements alternate baseline / IA so that load changes on a shared machine hit both,
and on CPU the clock is the process's CPU time (wall time on GPU).
A training iteration is forward + backward (the optimizer step costs the same for both and is left
out). Goals (paper, Table 1 / Sec. 3): training <= 1.10x, inference 1.00x.

    OMP_NUM_THREADS=2 python benchmarks/bench_inverted_attention.py \\
        --config projects/InvertedAttention/configs/COCO/ia_faster_rcnn_R50_FPN_1x.py --size 800 1088
    OMP_NUM_THREADS=2 python benchmarks/bench_inverted_attention.py \\
        --config projects/InvertedAttention/configs/shapes/ia_faster_rcnn_R18_FPN_shapes.py --size 320 416
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from net_detr2.config import LazyConfig, instantiate  # noqa: E402
from net_detr2.modeling import StandardROIHeads  # noqa: E402
from net_detr2.structures import Boxes, Instances  # noqa: E402
from net_detr2_projects.InvertedAttention.inverted_attention import IAROIHeads  # noqa: E402
from net_detr2_projects.InvertedAttention.inverted_attention.config_utils import IA_DEFAULTS  # noqa: E402


def build_models(config: str, device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(baseline, ia) with identical weights, from one IA config."""
    cfg = LazyConfig.load(config)
    if cfg.model.roi_heads._target_ is not IAROIHeads:
        raise ValueError(f"{config}: model.roi_heads is not IAROIHeads; pass an IA config")
    torch.manual_seed(0)
    ia = instantiate(cfg.model).to(device)
    cfg.model.roi_heads._target_ = StandardROIHeads
    for key in IA_DEFAULTS:
        cfg.model.roi_heads.pop(key)
    baseline = instantiate(cfg.model).to(device)
    baseline.load_state_dict(ia.state_dict())
    return baseline, ia


def make_batch(num_images: int, size: tuple[int, int], num_classes: int, device: str) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    h, w = size
    batch = []
    for i in range(num_images):
        boxes = torch.tensor([[0.1 * w, 0.1 * h, 0.45 * w, 0.6 * h], [0.5 * w, 0.3 * h, 0.9 * w, 0.95 * h]])
        inst = Instances(size, gt_boxes=Boxes(boxes), gt_classes=torch.tensor([i % num_classes, (i + 1) % num_classes]))
        image = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
        batch.append({"image": image.to(device), "height": h, "width": w, "instances": inst.to(device)})
    return batch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _clock(device: str) -> float:
    # On CPU the process time is what the model costs, whatever else the shared machine runs.
    return time.perf_counter() if device.startswith("cuda") else time.process_time()


def train_iteration(model: torch.nn.Module, batch: list[dict], device: str) -> float:
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    _sync(device)
    start = _clock(device)
    losses = model(batch)
    sum(losses.values()).backward()
    _sync(device)
    return _clock(device) - start


@torch.no_grad()
def inference(model: torch.nn.Module, batch: list[dict], device: str) -> float:
    model.eval()
    inputs = [{k: v for k, v in x.items() if k != "instances"} for x in batch]
    torch.manual_seed(1)
    _sync(device)
    start = _clock(device)
    model(inputs)
    _sync(device)
    return _clock(device) - start


def measure(fn, models, batch, device, repeats: int, warmup: int) -> list[list[float]]:
    """Alternating timings: result[m] = list of seconds of model m (CPU: process time)."""
    for _ in range(warmup):
        for m in models:
            fn(m, batch, device)
    times = [[] for _ in models]
    for r in range(repeats):
        order = range(len(models)) if r % 2 == 0 else reversed(range(len(models)))
        for i in order:
            times[i].append(fn(models[i], batch, device))
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--config", default=str(REPO / "projects/InvertedAttention/configs/COCO/ia_faster_rcnn_R50_FPN_1x.py")
    )
    parser.add_argument("--size", type=int, nargs=2, default=(800, 1088), metavar=("H", "W"))
    parser.add_argument("--images", type=int, default=2, help="images per batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    baseline, ia = build_models(args.config, args.device)
    batch = make_batch(args.images, tuple(args.size), ia.roi_heads.num_classes, args.device)
    print(f"config: {args.config}")
    print(
        f"device: {args.device}, threads: {torch.get_num_threads()}, "
        f"batch: {args.images} x {args.size[0]}x{args.size[1]}, "
        f"median of {args.repeats} (after {args.warmup} warm-up), RoIs/image: {ia.roi_heads.batch_size_per_image}, "
        f"clock: {'wall' if args.device.startswith('cuda') else 'process CPU time'}"
    )
    rows = []
    for name, fn in (("training iteration (fwd+bwd)", train_iteration), ("inference", inference)):
        t_base, t_ia = measure(fn, [baseline, ia], batch, args.device, args.repeats, args.warmup)
        mb, mi = statistics.median(t_base), statistics.median(t_ia)
        rows.append((name, mb, mi, mi / mb))
    print(f"{'':30s} {'baseline (s)':>13s} {'IA (s)':>10s} {'IA / baseline':>14s}  goal")
    for (name, mb, mi, ratio), goal in zip(rows, ("<= 1.10", "1.00")):
        print(f"{name:30s} {mb:13.3f} {mi:10.3f} {ratio:14.3f}  {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
