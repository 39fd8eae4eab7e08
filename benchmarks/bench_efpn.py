"""EFPN efficiency on CPU (the paper's Table III question): EFPN at 1x vs FPN at 1x and at 2x input.

Models: Faster R-CNN R50-FPN (``configs/common/models/faster_rcnn_fpn.py``, full width) and the
same model turned into EFPN (`efpn_model_from_fpn`: + C2', FTT, P2', P2' box head), sharing every
common weight (random init, seed 0; the P2' head is a copy of the base head). Inputs: the same
rendered ``shapes`` pictures, resized to ``--size`` (1x) and ``2 * --size`` (2x), batch of one.

Latency: median wall time of ``--runs`` forward passes in eval mode under ``torch.no_grad()``
(after one warm-up pass), ``torch.set_num_threads(--threads)`` for every model alike; also the
process CPU time of the pass (``time.process_time``), which other load on a shared machine disturbs
less than wall time; and the multiply-accumulates of all convolutions and linear layers of one
pass (counted by forward hooks: a load-independent measure of the work).

Peak memory: every configuration runs in its own fresh Python process. After building the model,
the input and one warm-up pass, the process resets its kernel peak-RSS counter (writing ``5`` to
``/proc/self/clear_refs``), reads its current RSS, runs one forward pass and reads the peak RSS
(``VmHWM``) again: "peak memory" = peak RSS during the pass - RSS before it, i.e. the activation
memory of the pass (weights, which are nearly the same for all, are excluded). The
children run with ``MALLOC_MMAP_THRESHOLD_=131072``, so glibc serves every block of 128 KiB or more
with its own mmap and returns it to the OS on free: RSS then follows the live tensors closely.
Where ``clear_refs`` cannot be written the script falls back to ``ru_maxrss`` of the fresh process
(then including weights) and says so.

Usage: ``OMP_NUM_THREADS=2 python benchmarks/bench_efpn.py [--size 512] [--runs 3] [--threads 2]``;
``--depth 101 --groups 32 --width-per-group 8`` measures a ResNeXt-101 (the paper's Table III backbone).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _build(kind: str, depth: int, groups: int = 1, width_per_group: int = 64, sr_module: str = "ftt"):
    import torch

    from net_detr2.config import LazyConfig, instantiate
    from net_detr2_projects.EFPN.efpn import efpn_model_from_fpn

    cfg = LazyConfig.load(str(ROOT / "configs/common/models/faster_rcnn_fpn.py"))
    cfg.model.backbone.bottom_up.depth = depth
    cfg.model.backbone.bottom_up.num_groups = groups
    cfg.model.backbone.bottom_up.width_per_group = width_per_group
    if groups > 1:  # ResNeXt: stride on the 3x3 conv, as detectron2's X-101 models
        cfg.model.backbone.bottom_up.stride_in_1x1 = False
    torch.manual_seed(0)
    fpn = instantiate(cfg.model)
    if kind == "fpn":
        return fpn.eval()
    efpn_cfg = efpn_model_from_fpn(cfg.model, small_roi_threshold=112.0)
    efpn_cfg.backbone.sr_module = sr_module
    efpn = instantiate(efpn_cfg)
    # Same weights for the common part; the extension keeps its own init, the P2' head copies the base head.
    efpn.load_state_dict(fpn.state_dict(), strict=False)
    return efpn.eval()


def _images(size: int, count: int):
    import cv2
    import torch

    from net_detr2.data.datasets.shapes import render_shapes_image

    out = []
    for seed in range(count):
        img, _ = render_shapes_image(1000 + seed)
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
        out.append(torch.as_tensor(img.transpose(2, 0, 1).copy()))
    return out


def count_gmacs(model, inputs) -> float:
    """Multiply-accumulates of every Conv2d / Linear in one forward pass, in billions (load-independent)."""
    import torch

    total = [0]

    def hook(module, _inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total[0] += output.numel() * (module.in_channels // module.groups) * k
        else:
            total[0] += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    with torch.no_grad():
        model(inputs)
    for h in handles:
        h.remove()
    return total[0] / 1e9


def run_one(kind: str, scale: int, args) -> dict:
    """Measure one configuration inside this (fresh) process."""
    import torch

    torch.set_num_threads(args.threads)
    model = _build(kind, args.depth, args.groups, args.width_per_group, args.sr_module)
    images = _images(args.size * scale, args.runs)
    inputs = [[{"image": im}] for im in images]
    with torch.no_grad():
        model(inputs[0])  # warm-up: first-call allocations, lazy init
        times, cpu = [], []
        for inp in inputs:
            t0, c0 = time.perf_counter(), time.process_time()
            model(inp)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        try:
            Path("/proc/self/clear_refs").write_text("5")
            method = "VmHWM after clear_refs - VmRSS before the pass"
            before = _status_kb("VmRSS")
            model(inputs[0])
            peak_kb = _status_kb("VmHWM") - before
        except OSError:
            method = "ru_maxrss of the whole process (clear_refs not writable)"
            model(inputs[0])
            peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gmacs = count_gmacs(model, inputs[0])
    return {
        "kind": kind,
        "scale": scale,
        "median_s": statistics.median(times),
        "times_s": times,
        "gmacs": gmacs,
        "median_cpu_s": statistics.median(cpu),
        "peak_mb": peak_kb / 1024.0,
        "memory_method": method,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512, help="1x input side (square)")
    parser.add_argument("--depth", type=int, default=50, help="ResNet depth")
    parser.add_argument(
        "--groups",
        type=int,
        default=1,
        help="ResNeXt cardinality (32 with "
        "--width-per-group 8 and --depth 101: X-101-32x8d, the paper's backbone family)",
    )
    parser.add_argument("--width-per-group", type=int, default=64, help="ResNeXt width per group")
    parser.add_argument(
        "--sr-module",
        default="ftt",
        choices=["ftt", "nearest", "espcn"],
        help="how EFPN makes P3' (nearest: the paper's 'EFPN w/o FTT' row)",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed forward passes per configuration")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--json", type=str, default="", help="also write the results to this file")
    parser.add_argument("--_child", type=str, default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._child:
        kind, scale = args._child.split(":")
        print(json.dumps(run_one(kind, int(scale), args)))
        return

    results = {}
    for kind, scale in [("fpn", 1), ("efpn", 1), ("fpn", 2)]:
        cmd = [
            sys.executable,
            __file__,
            "--size",
            str(args.size),
            "--depth",
            str(args.depth),
            "--groups",
            str(args.groups),
            "--width-per-group",
            str(args.width_per_group),
            "--sr-module",
            args.sr_module,
            "--runs",
            str(args.runs),
            "--threads",
            str(args.threads),
            "--_child",
            f"{kind}:{scale}",
        ]
        # A fixed glibc mmap threshold (which also switches off its dynamic growth) makes every block
        # >= 128 KiB an mmap that is returned to the OS on free, so RSS tracks the live tensors.
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MALLOC_MMAP_THRESHOLD_="131072")
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=str(ROOT))
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results[f"{kind}_{scale}x"] = res
        print(
            f"{kind.upper():4s} {scale}x ({args.size * scale}px): median {res['median_s']:.3f} s "
            f"(runs {', '.join(f'{t:.3f}' for t in res['times_s'])}), CPU time {res['median_cpu_s']:.3f} s, "
            f"peak {res['peak_mb']:.0f} MB, {res['gmacs']:.1f} GMAC",
            flush=True,
        )

    f1, e1, f2 = results["fpn_1x"], results["efpn_1x"], results["fpn_2x"]
    ratios = {
        "latency EFPN-1x / FPN-1x": e1["median_s"] / f1["median_s"],
        "latency EFPN-1x / FPN-2x": e1["median_s"] / f2["median_s"],
        "CPU time EFPN-1x / FPN-1x": e1["median_cpu_s"] / f1["median_cpu_s"],
        "CPU time EFPN-1x / FPN-2x": e1["median_cpu_s"] / f2["median_cpu_s"],
        "GMAC EFPN-1x / FPN-1x": e1["gmacs"] / f1["gmacs"],
        "GMAC EFPN-1x / FPN-2x": e1["gmacs"] / f2["gmacs"],
        "peak memory EFPN-1x / FPN-2x": e1["peak_mb"] / f2["peak_mb"],
        "peak memory EFPN-1x / FPN-1x": e1["peak_mb"] / f1["peak_mb"],
    }
    backbone = f"X{args.depth}-{args.groups}x{args.width_per_group}d" if args.groups > 1 else f"R{args.depth}"
    print(
        f"{backbone}-FPN, EFPN's P3' by {args.sr_module}, {args.size}px 1x, {args.threads} thread(s), "
        f"memory: {e1['memory_method']}"
    )
    goals = {
        "latency EFPN-1x / FPN-1x": ("<= 2.0", lambda r: r <= 2.0),
        "latency EFPN-1x / FPN-2x": ("< 1.0", lambda r: r < 1.0),
        "peak memory EFPN-1x / FPN-2x": ("< 1.0", lambda r: r < 1.0),
    }
    for name, r in ratios.items():
        goal = goals.get(name)
        verdict = f"  goal {goal[0]}: {'met' if goal[1](r) else 'NOT met'}" if goal else ""
        print(f"{name}: {r:.2f}{verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
