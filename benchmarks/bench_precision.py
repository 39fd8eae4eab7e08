#!/usr/bin/env python
"""CPU mixed precision: bf16 autocast + channels-last + folded BatchNorm against fp32, side by side.

Sections (``--sections``, default all but ``accuracy``, which needs ``--weights``):

* ``inference``: Faster R-CNN and RetinaNet R50-FPN (``configs/common/models``, random weights as in
  ``bench_baselines.py``) on one 800x1216 picture, post-processing included: ours with CPU bf16 + channels-last
  + folded BN ("ours fast": ``fuse_for_inference``, ``channels_last=True``, ``torch.autocast("cpu", bf16)``)
  against torchvision's ``fasterrcnn_resnet50_fpn`` / ``retinanet_resnet50_fpn`` in fp32 on the same input
  (goal: <= 0.5x), and against ours in fp32.
* ``training``: the same two models' training step (forward, backward, SGD step; FrozenBN ResNet with
  res2.. trainable as detectron2's default; one 800x1216 image with 6 boxes): ours with CPU bf16 autocast +
  channels-last against ours in fp32 (goal: <= 0.6x).
* ``ssd``: SSD300 and NETNet300 (full-width VGG-16, 91 logits, ``projects/NETNet/configs/*_vgg16_coco.py``)
  inference on one 300x300 picture, bf16 + channels-last + folded BN against fp32 (goal: <= 0.5x).
* ``accuracy``: the ``--config`` model (default the shapes Faster R-CNN) with ``--weights`` evaluated on its
  test set (``shapes_val``) in fp32, then with bf16 + channels-last + folded BN (goal: |AP difference| <= 0.3).

Timing: the variants run round-robin, one pass each per round (the order rotating from round to round), so
that load from other jobs on a shared machine hits them alike; a ratio is the median over the rounds of the
per-round ratio. ``torch.set_num_threads(--threads)`` for everything.

    OMP_NUM_THREADS=2 python benchmarks/bench_precision.py --threads 2 --rounds 5
    OMP_NUM_THREADS=2 python benchmarks/bench_precision.py --threads 2 --sections accuracy \\
        --weights output/shapes_frcnn/model_final.pth
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_baselines import H, W, _image, build_ours, build_torchvision  # noqa: E402
from net_detr2.layers import fuse_for_inference  # noqa: E402
from net_detr2.structures import Boxes, Instances  # noqa: E402
from net_detr2.utils.amp import autocast, cpu_supports_bf16  # noqa: E402

BF16 = torch.bfloat16
SECTIONS = ("inference", "training", "ssd", "accuracy")


def paired_rounds(fns: dict[str, Callable[[], object]], rounds: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of one call of each fn per round; all fns run once per round, in an order rotating by one
    each round, so that slow phases of a shared machine hit every fn alike."""
    names = list(fns)
    times = {k: [] for k in names}
    for r in range(warmup + rounds):
        shift = r % len(names)
        for k in names[shift:] + names[:shift]:
            t0 = time.perf_counter()
            fns[k]()
            if r >= warmup:
                times[k].append(time.perf_counter() - t0)
    return times


def paired_ratio(num: list[float], den: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(num, den))


def fast_inference_model(model: torch.nn.Module) -> torch.nn.Module:
    """The inference setting under test: BN folded (a copy), channels-last; run it under bf16 autocast."""
    return fuse_for_inference(model, channels_last=True)


def _bf16(fn: Callable[[], object]) -> Callable[[], object]:
    def run():
        with autocast("cpu", BF16):
            return fn()

    return run


def _report(rows: list[dict], section: str, times: dict[str, list[float]], pairs, extra: str = "") -> None:
    med = {k: statistics.median(v) for k, v in times.items()}
    print("  " + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in med.items()) + extra)
    for num, den, goal in pairs:
        ratio = paired_ratio(times[num], times[den])
        verdict = "" if goal is None else f" (goal <= {goal:.2f}: {'met' if ratio <= goal else 'MISSED'})"
        print(f"  {num} / {den}: {ratio:.3f}{verdict}")
        rows.append(dict(section=section, numerator=num, denominator=den, ratio=ratio, goal=goal, medians_s=med))


# ----------------------------------------------------------------------------------------------- sections
def _inference_fns(kind: str, ours_in: list[dict], tv_in: list[torch.Tensor]) -> dict[str, Callable[[], object]]:
    ours = build_ours(kind)
    fast = fast_inference_model(ours)
    tv = build_torchvision(kind)
    return {
        "torchvision fp32": lambda: tv(tv_in),
        "ours fp32": lambda: ours(ours_in),
        "ours fast": _bf16(lambda: fast(ours_in)),
    }


def bench_inference(args, rows: list[dict]) -> None:
    bgr = _image()
    ours_in = [{"image": bgr, "height": H, "width": W}]
    tv_in = [bgr.flip(0).float() / 255.0]
    for kind in args.models:
        fns = _inference_fns(kind, ours_in, tv_in)
        print(f"[inference] {kind}, {H}x{W}, batch 1", flush=True)
        with torch.no_grad():
            times = paired_rounds(fns, args.rounds, args.warmup)
            outs = {k: fn() for k, fn in fns.items()}
        dets = {k: len(o[0]["boxes"] if "boxes" in o[0] else o[0]["instances"]) for k, o in outs.items()}
        pairs = [
            ("ours fast", "torchvision fp32", 0.5),
            ("ours fast", "ours fp32", None),
            ("ours fp32", "torchvision fp32", None),
        ]
        _report(rows, f"inference {kind}", times, pairs, extra=f"; detections {dets}")


def _training_batch(num_classes: int) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(6, 2, generator=g) * torch.tensor([W - 300.0, H - 300.0])
    wh = 30 + torch.rand(6, 2, generator=g) * 260
    boxes = torch.cat([xy, xy + wh], dim=1)
    inst = Instances((H, W), gt_boxes=Boxes(boxes), gt_classes=torch.randint(0, num_classes, (6,), generator=g))
    return [{"image": _image(), "height": H, "width": W, "instances": inst}]


def _training_step(model: torch.nn.Module, batch: list[dict], dtype: torch.dtype | None) -> Callable[[], None]:
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)

    def step():
        with autocast("cpu", dtype):
            loss = sum(model(batch).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def bench_training(args, rows: list[dict]) -> None:
    for kind in args.models:
        base = build_ours(kind).train()
        num_classes = base.num_classes if hasattr(base, "num_classes") else base.roi_heads.num_classes
        batch = _training_batch(num_classes)
        fast = copy.deepcopy(base)
        fast.channels_last = True
        fns = {"ours fp32": _training_step(base, batch, None), "ours bf16": _training_step(fast, batch, BF16)}
        print(f"[training] {kind}, one {H}x{W} image; bf16 runs channels-last", flush=True)
        times = paired_rounds(fns, args.train_rounds, args.warmup)
        _report(rows, f"training {kind}", times, [("ours bf16", "ours fp32", 0.6)])


def _ssd_fns(netnet: bool, inp: list[dict]) -> dict[str, Callable[[], object]]:
    from benchmarks.bench_netnet import build_ours as build_ssd

    torch.manual_seed(0)
    model = build_ssd(netnet)
    fast = fast_inference_model(model)
    return {"fp32": lambda: model(inp), "bf16 fast": _bf16(lambda: fast(inp))}


def bench_ssd(args, rows: list[dict]) -> None:
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 300, 300), dtype=torch.uint8)
    inp = [{"image": image, "height": 300, "width": 300}]
    for name, netnet in (("SSD300", False), ("NETNet300", True)):
        fns = _ssd_fns(netnet, inp)
        print(f"[ssd] {name} (VGG-16), 300x300, batch 1", flush=True)
        with torch.no_grad():
            times = paired_rounds(fns, args.ssd_rounds, args.warmup)
        _report(rows, f"ssd {name}", times, [("bf16 fast", "fp32", 0.5)])


def bench_accuracy(args, rows: list[dict]) -> None:
    from net_detr2.checkpoint import DetectionCheckpointer
    from net_detr2.config import LazyConfig, instantiate
    from net_detr2.evaluation import inference_on_dataset

    if not args.weights:
        raise SystemExit("bench_precision.py: the accuracy section needs --weights (a checkpoint of --config)")
    cfg = LazyConfig.load(args.config)
    cfg.train.device = "cpu"
    model = instantiate(cfg.model)
    DetectionCheckpointer(model).load(args.weights)
    model.eval()
    results = {}
    for name, net, dtype in (("fp32", model, None), ("bf16 fast", fast_inference_model(model), BF16)):
        t0 = time.perf_counter()
        res = inference_on_dataset(
            net, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator), amp_dtype=dtype
        )
        results[name] = (res["bbox"], time.perf_counter() - t0)
    print(f"[accuracy] {args.config} with {args.weights}")
    for name, (bbox, seconds) in results.items():
        print(f"  {name}: AP {bbox['AP']:.2f}, AP50 {bbox['AP50']:.2f}, APs {bbox['APs']:.2f}  ({seconds:.0f} s)")
    delta = results["bf16 fast"][0]["AP"] - results["fp32"][0]["AP"]
    verdict = "met" if abs(delta) <= 0.3 else "MISSED"
    print(f"  AP(bf16 fast) - AP(fp32): {delta:+.2f} (goal |difference| <= 0.3: {verdict})")
    rows.append(dict(section="accuracy", ap={k: v[0] for k, v in results.items()}, delta_ap=delta, goal=0.3))


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5, help="rounds of the inference section")
    p.add_argument("--train-rounds", type=int, default=3, help="rounds of the training section")
    p.add_argument("--ssd-rounds", type=int, default=10, help="rounds of the SSD section")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--sections", nargs="+", default=["inference", "training", "ssd"], choices=SECTIONS)
    p.add_argument(
        "--models", nargs="+", default=["faster_rcnn_fpn", "retinanet"], choices=["faster_rcnn_fpn", "retinanet"]
    )
    p.add_argument("--config", default=str(ROOT / "configs/shapes/faster_rcnn_R18_FPN.py"), help="accuracy: config")
    p.add_argument("--weights", default=None, help="accuracy: checkpoint of --config")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU bf16 support: {cpu_supports_bf16()}; "
        f"rounds: inference {args.rounds}, training {args.train_rounds}, ssd {args.ssd_rounds}, warm-up {args.warmup}"
    )
    rows: list[dict] = []
    for section in SECTIONS:
        if section in args.sections:
            globals()[f"bench_{section}"](args, rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return rows


if __name__ == "__main__":
    main()
