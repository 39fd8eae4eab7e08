"""DC-RetinaNet overheads, side by side with the plain operations (CPU).

1. NMS: ``cl_balanced_nms`` (beta = 1) vs torchvision ``batched_nms`` on the same ``--boxes`` boxes
   (default 10,000) over ``--classes`` classes (default 80), IoU threshold 0.5. The boxes come in clusters
   (jittered copies of 400 random objects), as a detector's pre-NMS candidates do, scores uniform.
   Goal: CL-balanced NMS <= 3x batched_nms.
2. Training iteration: forward + backward of `DCRetinaNet` with all three components on vs the plain
   `RetinaNet`, same weights, same batch: the `shapes` model of
   ``projects/DCRetinaNet/configs/shapes/`` (narrow R18-FPN, 6 classes) on ``--batch`` images of 320x416
   with 3 objects each (``--model coco``: the COCO R50-FPN model, one 800x1216 image, 8 objects).
   Goal: <= 1.10x.

Timing: median over ``--runs`` repeats after ``--warmup`` repeats, the two variants interleaved repeat by
repeat so that other load on a shared machine hits both alike; ``torch.set_num_threads(--threads)``
(default 1: on a machine busier than its core count, more intra-op threads than free cores make the
large sorts/reductions of both variants wait on each other and the ratios meaningless).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_dc_retinanet.py [--runs 15] [--threads 1] [--model shapes]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torchvision.ops import batched_nms

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _median_times(fns: dict, runs: int, warmup: int) -> dict:
    """Median wall time (s) of each callable, interleaved run by run."""
    times = {k: [] for k in fns}
    for i in range(warmup + runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def nms_inputs(n: int, num_classes: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    objects = 400
    centres = torch.rand(objects, 2, generator=g) * 1000
    sizes = 20 + torch.rand(objects, 2, generator=g) * 180
    which = torch.randint(0, objects, (n,), generator=g)
    c = centres[which] + torch.randn(n, 2, generator=g) * sizes[which] * 0.1
    wh = sizes[which] * (1 + torch.randn(n, 2, generator=g) * 0.1).clamp(min=0.5)
    boxes = torch.cat([c - wh / 2, c + wh / 2], dim=1)
    scores = torch.rand(n, generator=g)
    classes = torch.randint(0, num_classes, (n,), generator=g)
    return boxes, scores, classes


def bench_nms(args) -> None:
    from net_detr2_projects.DCRetinaNet.dc_retinanet import cl_balanced_nms

    boxes, scores, classes = nms_inputs(args.boxes, args.classes)
    kept = {
        "batched_nms": len(batched_nms(boxes, scores, classes, 0.5)),
        "cl_balanced_nms": len(cl_balanced_nms(boxes, scores, classes, 0.5, beta=1.0)[0]),
    }
    t = _median_times(
        {
            "batched_nms": lambda: batched_nms(boxes, scores, classes, 0.5),
            "cl_balanced_nms": lambda: cl_balanced_nms(boxes, scores, classes, 0.5, beta=1.0),
        },
        args.runs,
        args.warmup,
    )
    print(f"NMS on {args.boxes} boxes / {args.classes} classes (IoU 0.5), median of {args.runs}:")
    for k in t:
        print(f"  {k:<16} {t[k] * 1e3:8.2f} ms   kept {kept[k]}")
    print(f"  ratio cl_balanced_nms / batched_nms: {t['cl_balanced_nms'] / t['batched_nms']:.2f}x (goal <= 3x)")


def _train_inputs(model_kind: str, batch: int):
    from net_detr2.structures import Boxes, Instances

    g = torch.Generator().manual_seed(0)
    h, w, objects, n = (320, 416, 3, batch) if model_kind == "shapes" else (800, 1216, 8, 1)
    out = []
    for _ in range(n):
        xy = torch.rand(objects, 2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
        wh = 10 + torch.rand(objects, 2, generator=g) * torch.tensor([w * 0.3, h * 0.3])
        inst = Instances(
            (h, w),
            gt_boxes=Boxes(torch.cat([xy, xy + wh], dim=1)),
            gt_classes=torch.randint(0, 6, (objects,), generator=g),
        )
        out.append({"image": torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8), "instances": inst})
    return out


def bench_training(args) -> None:
    from net_detr2.config import LazyConfig, instantiate
    from net_detr2.utils.events import EventStorage
    from net_detr2_projects.DCRetinaNet.dc_retinanet import DC_DEFAULTS, use_dc_retinanet

    path = {
        "shapes": "projects/DCRetinaNet/configs/shapes/dc_retinanet_R18_FPN_iac_dc_cl.py",
        "coco": "projects/DCRetinaNet/configs/COCO/dc_retinanet_R50_FPN_1x_iac_dc_cl.py",
    }[args.model]
    cfg = LazyConfig.load(str(ROOT / path))
    torch.manual_seed(0)
    dc = instantiate(cfg.model).train()
    use_dc_retinanet(cfg.model, iac_assignment=False, dc_loss=False, cl_nms=False)
    cfg.model._target_ = "net_detr2.modeling.RetinaNet"
    for key in ("iac_assignment", "dc_loss", "cl_nms", *DC_DEFAULTS):
        cfg.model.pop(key)
    plain = instantiate(cfg.model).train()
    plain.load_state_dict(dc.state_dict())
    inputs = _train_inputs(args.model, args.batch)

    storage = EventStorage()  # as in training: DCRetinaNet records its statistics every `log_statistics` steps

    def step(model):
        def run():
            model.zero_grad(set_to_none=True)
            losses = model(inputs)
            sum(losses.values()).backward()
            storage.step()

        return run

    with storage:
        t = _median_times({"RetinaNet": step(plain), "DCRetinaNet": step(dc)}, args.runs, args.warmup)
    n = len(inputs)
    print(
        f"Training iteration (forward + backward), {args.model} model, {n} image(s) of "
        f"{inputs[0]['image'].shape[1]}x{inputs[0]['image'].shape[2]}, median of {args.runs}:"
    )
    for k in t:
        print(f"  {k:<16} {t[k] * 1e3:8.1f} ms")
    print(f"  ratio DCRetinaNet / RetinaNet: {t['DCRetinaNet'] / t['RetinaNet']:.3f}x (goal <= 1.10x)")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--boxes", type=int, default=10000)
    p.add_argument("--classes", type=int, default=80)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--model", choices=["shapes", "coco"], default="shapes")
    p.add_argument("--only", choices=["nms", "train"], default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.only in (None, "nms"):
        bench_nms(args)
    if args.only in (None, "train"):
        bench_training(args)


if __name__ == "__main__":
    main()
