#!/usr/bin/env python
"""One-shot GPU check: every detector trains in fp32, fp16 and bf16; Faster R-CNN against torchvision; NCCL.

Made to run the moment a GPU is lent (under 8 minutes on one GPU), writing one JSON and printing a table:

1. ``train``: a few training steps (random weights, synthetic pictures with boxes) of every detector in its
   full-size configuration -- Faster R-CNN and RetinaNet R50-FPN (``configs/COCO-Detection``), SSD300 and
   NETNet300 (VGG-16), EFPN stages 1-3, Inverted Attention and DC-RetinaNet (COCO configs of their projects)
   -- in fp32, fp16 (autocast + GradScaler) and bf16 (autocast). Per run: ms per step, the last losses (all
   must be finite), parameters still fp32, peak GPU memory.
2. ``frcnn``: our Faster R-CNN R50-FPN against torchvision's ``fasterrcnn_resnet50_fpn`` (the same
   detectron2-style setting: FrozenBN, stem + res2 frozen, 91 classes) at 800x1333: training images/s
   (batch 2) and inference latency (batch 1; ours also with folded BN + channels-last), per dtype.
3. ``nccl``: a one-process NCCL process group set up by `net_detr2.engine.launch`'s worker: all-reduce and a
   DistributedDataParallel step.

A check that fails is recorded with its error and the run goes on; ``--budget-s`` (default 450) stops
starting new checks when it is spent. ``--self-test`` runs the same code on the CPU in seconds (small
`shapes` configurations, tiny pictures, bf16 only where fp16 is CUDA-only, gloo instead of NCCL); the test
suite runs it.

    python benchmarks/gpu_check.py --out gpu_check.json
    python benchmarks/gpu_check.py --self-test --out /tmp/gpu_check_cpu.json
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from net_detr2.config import LazyConfig, instantiate  # noqa: E402
from net_detr2.layers import fuse_for_inference  # noqa: E402
from net_detr2.solver import freeze_parameters  # noqa: E402
from net_detr2.structures import Boxes, Instances  # noqa: E402
from net_detr2.utils.amp import autocast, needs_grad_scaler  # noqa: E402

DTYPES = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}

# name: (full-size config, small config for --self-test, kind of input)
DETECTORS = {
    "faster_rcnn": (
        "configs/COCO-Detection/faster_rcnn_R_50_FPN_1x.py",
        "configs/shapes/faster_rcnn_R18_FPN.py",
        "rcnn",
    ),
    "retinanet": ("configs/COCO-Detection/retinanet_R_50_FPN_1x.py", "configs/shapes/retinanet_R18_FPN.py", "rcnn"),
    "ssd300": ("projects/NETNet/configs/ssd300_vgg16_coco.py", "projects/NETNet/configs/ssd300_shapes.py", "ssd"),
    "netnet300": (
        "projects/NETNet/configs/netnet300_vgg16_coco.py",
        "projects/NETNet/configs/netnet300_shapes.py",
        "ssd",
    ),
    "efpn_stage1": (
        "projects/EFPN/configs/coco_R50_stage1_fpn.py",
        "projects/EFPN/configs/shapes_stage1_fpn.py",
        "rcnn",
    ),
    "efpn_stage2": (
        "projects/EFPN/configs/coco_R50_stage2_distill.py",
        "projects/EFPN/configs/shapes_stage2_distill.py",
        "rcnn",
    ),
    "efpn_stage3": (
        "projects/EFPN/configs/coco_R50_stage3_p2head.py",
        "projects/EFPN/configs/shapes_stage3_p2head.py",
        "rcnn",
    ),
    "inverted_attention": (
        "projects/InvertedAttention/configs/COCO/ia_faster_rcnn_R50_FPN_1x.py",
        "projects/InvertedAttention/configs/shapes/ia_faster_rcnn_R18_FPN_shapes.py",
        "rcnn",
    ),
    "dc_retinanet": (
        "projects/DCRetinaNet/configs/COCO/dc_retinanet_R50_FPN_1x_iac_dc_cl.py",
        "projects/DCRetinaNet/configs/shapes/dc_retinanet_R18_FPN_iac_dc_cl.py",
        "rcnn",
    ),
}


class Settings:
    """Sizes and counts of one run: the GPU run, or the CPU self-test."""

    def __init__(self, self_test: bool):
        self.self_test = self_test
        self.device = "cpu" if self_test else "cuda"
        self.rcnn_size, self.rcnn_batch = ((96, 128), 2) if self_test else ((800, 1088), 2)
        self.ssd_size, self.ssd_batch = (300, 2) if self_test else (300, 8)
        self.train_warmup, self.train_steps = (0, 1) if self_test else (2, 3)
        self.compare_size = (64, 96) if self_test else (800, 1333)
        self.compare_batch = 2
        self.compare_warmup, self.compare_steps = (0, 1) if self_test else (3, 10)
        self.infer_warmup, self.infer_runs = (0, 1) if self_test else (3, 10)
        # On the CPU fp16 autocast is refused (utils.amp) and fp32 is the slow path: the self-test runs every
        # detector in bf16 and only the first one in fp32, enough to go through every code path.
        self.dtypes = ["float32", "bfloat16"] if self_test else ["float32", "float16", "bfloat16"]
        self.compare_dtypes = ["bfloat16"] if self_test else self.dtypes


# ------------------------------------------------------------------------------------------------- helpers
def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_mb(device: str) -> float | None:
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return None


def _num_classes(model: torch.nn.Module) -> int:
    if hasattr(model, "num_classes"):
        return int(model.num_classes)
    return int(model.roi_heads.num_classes)


def synthetic_batch(n: int, size: tuple[int, int], num_classes: int, seed: int, with_2x: bool) -> list[dict]:
    """``n`` pictures (smooth noise, uint8 BGR) of ``size`` with 1-4 random boxes each; EFPN's distillation
    also gets ``image_2x`` (the picture at twice the size, ``image`` being its 2x2 average)."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    out = []
    for _ in range(n):
        big = F.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g) * 255, size=(2 * h, 2 * w), mode="bilinear")
        k = int(torch.randint(1, 5, (1,), generator=g))
        xy = torch.rand(k, 2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
        wh = torch.tensor([w, h]) * (0.05 + torch.rand(k, 2, generator=g) * 0.25)
        inst = Instances(
            (h, w),
            gt_boxes=Boxes(torch.cat([xy, xy + wh], dim=1)),
            gt_classes=torch.randint(0, num_classes, (k,), generator=g),
        )
        d = {"image": F.avg_pool2d(big, 2)[0].round().to(torch.uint8), "height": h, "width": w, "instances": inst}
        if with_2x:
            d["image_2x"] = big[0].round().to(torch.uint8)
        out.append(d)
    return out


def training_step(model, params, batch, device: str, dtype: torch.dtype | None) -> Callable[[], dict]:
    """One SGD step under autocast in ``dtype`` (a GradScaler for CUDA fp16); returns the float losses."""
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda") if needs_grad_scaler(dtype, device) else None

    def step() -> dict:
        with autocast(device, dtype):
            losses = model(batch)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        return {k: float(v.detach()) for k, v in losses.items()}

    return step


def timed(fn: Callable[[], object], device: str, warmup: int, runs: int) -> tuple[list[float], object]:
    """Seconds of each of ``runs`` calls after ``warmup`` calls, and the last result."""
    out = None
    for _ in range(warmup):
        out = fn()
    _sync(device)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times, out


# ------------------------------------------------------------------------------------------------- checks
def check_train(name: str, dtype_name: str, s: Settings) -> dict:
    full_cfg, small_cfg, kind = DETECTORS[name]
    cfg = LazyConfig.load(str(ROOT / (small_cfg if s.self_test else full_cfg)))
    torch.manual_seed(0)
    model = instantiate(cfg.model).to(s.device).train()
    freeze_parameters(model, cfg.train.get("trainable_params", None))
    params = [p for p in model.parameters() if p.requires_grad]
    size, n = ((s.ssd_size, s.ssd_size), s.ssd_batch) if kind == "ssd" else (s.rcnn_size, s.rcnn_batch)
    batch = synthetic_batch(n, size, _num_classes(model), 0, with_2x=bool(getattr(model, "distillation", False)))
    dtype = DTYPES[dtype_name]
    _reset_peak(s.device)
    times, losses = timed(training_step(model, params, batch, s.device, dtype), s.device, s.train_warmup, s.train_steps)
    finite = all(math.isfinite(v) for v in losses.values())
    fp32_params = all(p.dtype == torch.float32 for p in model.parameters())
    return dict(
        status="ok" if finite and fp32_params else "failed",
        error=None if finite else f"non-finite losses {losses}",
        ms_per_step=1000 * statistics.median(times),
        images_per_step=n,
        image_size=list(size),
        losses=losses,
        params_fp32=fp32_params,
        peak_mem_mb=_peak_mb(s.device),
    )


def _torchvision_frcnn(size: tuple[int, int]):
    """torchvision's Faster R-CNN R50-FPN in detectron2's training setting: FrozenBN, stem + layer1 frozen."""
    from torchvision.models import resnet50
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops import FrozenBatchNorm2d

    backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=FrozenBatchNorm2d), trainable_layers=3)
    return FasterRCNN(backbone, num_classes=91, min_size=min(size), max_size=max(size))


def _tv_batch(batch: list[dict], device: str) -> tuple[list[torch.Tensor], list[dict]]:
    images = [d["image"].flip(0).float().div(255).to(device) for d in batch]
    targets = [
        {"boxes": d["instances"].gt_boxes.tensor.to(device), "labels": d["instances"].gt_classes.to(device) + 1}
        for d in batch
    ]
    return images, targets


def check_frcnn_vs_torchvision(s: Settings) -> dict:
    """Training images/s and inference latency, ours and torchvision's, per dtype, same pictures."""
    cfg = LazyConfig.load(str(ROOT / DETECTORS["faster_rcnn"][0]))
    cfg.model.roi_heads.num_classes = 90  # torchvision's 91 logits include the background
    cfg.model.roi_heads.box_predictor.num_classes = 90
    torch.manual_seed(0)
    ours = instantiate(cfg.model).to(s.device)
    tv = _torchvision_frcnn(s.compare_size).to(s.device)
    batch = synthetic_batch(s.compare_batch, s.compare_size, 90, 1, with_2x=False)
    batch = [{**d, "instances": d["instances"].to(s.device)} for d in batch]
    tv_images, tv_targets = _tv_batch(batch, s.device)
    result = {"image_size": list(s.compare_size), "train_batch": s.compare_batch, "train": {}, "inference": {}}
    for dtype_name in s.compare_dtypes:
        dtype = DTYPES[dtype_name]
        row = {}
        for who, model in (("ours", copy.deepcopy(ours).train()), ("torchvision", copy.deepcopy(tv).train())):
            params = [p for p in model.parameters() if p.requires_grad]
            if who == "ours":
                step = training_step(model, params, batch, s.device, dtype)
            else:
                step = training_step(_TvLossWrapper(model, tv_images, tv_targets), params, None, s.device, dtype)
            _reset_peak(s.device)
            times, _ = timed(step, s.device, s.compare_warmup, s.compare_steps)
            row[who] = dict(images_per_s=s.compare_batch / statistics.median(times), peak_mem_mb=_peak_mb(s.device))
            del model, step
        row["ours / torchvision images/s"] = row["ours"]["images_per_s"] / row["torchvision"]["images_per_s"]
        result["train"][dtype_name] = row

        one = [{k: v for k, v in batch[0].items() if k != "instances"}]
        ours_eval = copy.deepcopy(ours).eval()
        fast = fuse_for_inference(ours, channels_last=True)
        tv_eval = copy.deepcopy(tv).eval()
        latency = {}
        for who, fn in (
            ("ours", functools.partial(ours_eval, one)),
            ("ours fused + channels-last", functools.partial(fast, one)),
            ("torchvision", functools.partial(tv_eval, tv_images[:1])),
        ):
            with torch.no_grad(), autocast(s.device, dtype):
                times, _ = timed(fn, s.device, s.infer_warmup, s.infer_runs)
            latency[who] = 1000 * statistics.median(times)
        latency["ours / torchvision"] = latency["ours"] / latency["torchvision"]
        latency["ours fused + channels-last / torchvision"] = (
            latency["ours fused + channels-last"] / latency["torchvision"]
        )
        result["inference"][dtype_name] = {"latency_ms": latency}
        del ours_eval, fast, tv_eval
    return dict(status="ok", **result)


class _TvLossWrapper(torch.nn.Module):
    """torchvision's detector called as ours is in `training_step`: ``model(batch) -> dict of losses``."""

    def __init__(self, model, images, targets):
        super().__init__()
        self.model, self.images, self.targets = model, images, targets

    def forward(self, _batch):
        return self.model(self.images, self.targets)


def _ddp_smoke(device: str, out: dict) -> None:
    """Inside the process group: all-reduce, then one DistributedDataParallel step of a small conv net."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    t = torch.ones(4, device=device) * (dist.get_rank() + 1)
    dist.all_reduce(t)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    net = net.to(device)
    net(torch.randn(1, 3, 16, 16, device=device))  # materialise the lazy layer before DDP wraps it
    ddp = DistributedDataParallel(net, device_ids=[0] if device == "cuda" else None)
    loss = ddp(torch.randn(4, 3, 16, 16, device=device)).square().mean()
    loss.backward()
    out.update(
        backend=dist.get_backend(),
        world_size=dist.get_world_size(),
        all_reduce=t.tolist(),
        ddp_grad_finite=all(torch.isfinite(p.grad).all().item() for p in net.parameters()),
    )


def check_nccl(s: Settings) -> dict:
    """One process through `launch`'s worker (process group, local group, barrier, then the work)."""
    from net_detr2.engine.launch import _distributed_worker

    backend = "gloo" if s.self_test else "nccl"
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="gpu_check_dist_") as tmp:
        _distributed_worker(
            0, _ddp_smoke, 1, 1, 0, f"file://{tmp}/rendezvous", (s.device, out), timedelta(minutes=2), backend
        )
    ok = out.get("backend") == backend and out.get("all_reduce") == [1.0] * 4 and out.get("ddp_grad_finite")
    return dict(status="ok" if ok else "failed", error=None if ok else f"unexpected result {out}", **out)


# ------------------------------------------------------------------------------------------------- driver
def _run(name: str, fn: Callable[[], dict], deadline: float, log: list[dict], **fields) -> dict:
    entry = dict(check=name, **fields)
    if time.perf_counter() > deadline:
        entry.update(status="skipped", error="time budget spent")
    else:
        t0 = time.perf_counter()
        try:
            entry.update(fn())
        except Exception as e:  # a failed check is a result: record it and go on
            entry.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc(limit=6))
        entry["seconds"] = time.perf_counter() - t0
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    log.append(entry)
    extra = "" if entry["status"] == "ok" else f"  ({entry.get('error')})"
    print(f"  {name:<20} {fields.get('dtype', ''):<9} {entry['status']}{extra}", flush=True)
    return entry


def print_table(report: dict) -> None:
    print(f"\n{'detector':<20}{'dtype':<10}{'status':<9}{'ms/step':>9}{'img/step':>9}{'peak MB':>9}  losses")
    for e in report["checks"]:
        if e["check"] != "train":
            continue
        mem = "" if e.get("peak_mem_mb") is None else f"{e['peak_mem_mb']:.0f}"
        ms = f"{e['ms_per_step']:.0f}" if "ms_per_step" in e else ""
        losses = ", ".join(f"{k}={v:.3g}" for k, v in (e.get("losses") or {}).items())
        print(
            f"{e['detector']:<20}{e['dtype']:<10}{e['status']:<9}{ms:>9}{e.get('images_per_step', ''):>9}{mem:>9}"
            f"  {losses or e.get('error', '')}"
        )
    for e in report["checks"]:
        if e["check"] == "frcnn_vs_torchvision" and e["status"] == "ok":
            print(f"\nFaster R-CNN R50-FPN vs torchvision, {e['image_size']}, training batch {e['train_batch']}")
            for dtype_name, row in e["train"].items():
                print(
                    f"  train {dtype_name:<9} ours {row['ours']['images_per_s']:.2f} img/s, torchvision "
                    f"{row['torchvision']['images_per_s']:.2f} img/s, ratio {row['ours / torchvision images/s']:.2f}"
                )
            for dtype_name, row in e["inference"].items():
                lat = row["latency_ms"]
                print(
                    f"  infer {dtype_name:<9} ours {lat['ours']:.1f} ms (fused + channels-last "
                    f"{lat['ours fused + channels-last']:.1f}), torchvision {lat['torchvision']:.1f} ms"
                )
        elif e["check"] != "train":
            print(f"\n{e['check']}: {e['status']} {e.get('error') or ''}")
    print(f"\ntotal {report['total_s']:.0f} s on {report['device']}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="gpu_check.json", help="the JSON report")
    p.add_argument("--self-test", action="store_true", help="the CPU path, small and quick (for the test suite)")
    p.add_argument("--budget-s", type=float, default=450.0, help="start no check after this many seconds")
    p.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    p.add_argument("--sections", nargs="+", default=["train", "frcnn", "nccl"], choices=["train", "frcnn", "nccl"])
    args = p.parse_args(argv)
    s = Settings(args.self_test)
    if not s.self_test and not torch.cuda.is_available():
        raise SystemExit("gpu_check.py: no CUDA device visible (use --self-test for the CPU path)")
    start = time.perf_counter()
    deadline = start + args.budget_s
    device_name = torch.cuda.get_device_name(0) if s.device == "cuda" else "cpu (self-test)"
    print(f"gpu_check on {device_name}, torch {torch.__version__}", flush=True)
    log: list[dict] = []
    if "train" in args.sections:
        for i, name in enumerate(args.detectors):
            for dtype_name in s.dtypes:
                if s.self_test and dtype_name == "float32" and i > 0:
                    continue
                check = functools.partial(check_train, name, dtype_name, s)
                _run("train", check, deadline, log, detector=name, dtype=dtype_name)
        if s.self_test:  # what the GPU run does in fp16, the CPU refuses: recorded, not run
            log.append(dict(check="train", detector="*", dtype="float16", status="skipped", error="CUDA-only"))
    if "frcnn" in args.sections:
        _run("frcnn_vs_torchvision", lambda: check_frcnn_vs_torchvision(s), deadline, log)
    if "nccl" in args.sections:
        _run("nccl_launch", lambda: check_nccl(s), deadline, log)
    report = dict(
        device=device_name,
        torch=torch.__version__,
        self_test=s.self_test,
        total_s=time.perf_counter() - start,
        checks=log,
    )
    tmp = f"{args.out}.tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1, default=str)
    os.replace(tmp, args.out)
    print_table(report)
    print(f"report: {args.out}")
    return report


if __name__ == "__main__":
    main()
