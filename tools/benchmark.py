#!/usr/bin/env python
"""Speed of any config: data-loader throughput, training iterations/s and inference latency.

    python tools/benchmark.py --config-file configs/shapes/faster_rcnn_R18_FPN.py
    python tools/benchmark.py --config-file cfg.py --tasks train --iters 50 --warmup 5
    python tools/benchmark.py --config-file cfg.py --tasks eval --weights model_final.pth

* ``data``: batches of ``cfg.dataloader.train`` per second (reading, augmenting, batching; workers as configured);
* ``train``: training iterations per second (forward, backward, optimizer step) on batches fetched beforehand,
  so the data loader's time is not in it;
* ``eval``: inference latency per image on ``cfg.dataloader.test`` (batch 1, post-processing included).

The first ``--warmup`` iterations of each task are not timed. Times are wall-clock on this machine: numbers
taken while other jobs run are slower, so compare configs in one run, or under the same load.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

from net_detr2.checkpoint import DetectionCheckpointer  # noqa: E402
from net_detr2.config import LazyConfig, instantiate  # noqa: E402
from net_detr2.solver import build_optimizer  # noqa: E402
from net_detr2.utils.logger import setup_logger  # noqa: E402

logger = logging.getLogger("net_detr2.benchmark")
TASKS = ("data", "train", "eval")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rates(task: str, iters: int, images: int, total_s: float) -> dict:
    """One benchmark row: ``iters`` timed iterations over ``images`` images took ``total_s`` seconds."""
    return {
        "task": task,
        "iters": iters,
        "s/iter": total_s / iters,
        "iter/s": iters / total_s,
        "images/s": images / total_s,
    }


def bench_data(cfg, iters: int, warmup: int) -> dict:
    loader = iter(instantiate(cfg.dataloader.train))
    for _ in range(warmup):
        next(loader)
    times, images = [], 0
    for _ in range(iters):
        t0 = time.perf_counter()
        batch = next(loader)
        times.append(time.perf_counter() - t0)
        images += len(batch)
    return _rates("data", iters, images, sum(times))


def bench_train(cfg, iters: int, warmup: int, device: str) -> dict:
    model = instantiate(cfg.model).to(device)
    model.train()
    optimizer = build_optimizer(cfg.optimizer, model)
    loader = iter(instantiate(cfg.dataloader.train))
    cached = [next(loader) for _ in range(min(iters + warmup, 8))]  # reused in turn: no data time in the step
    times, images = [], 0
    for i, batch in enumerate(itertools.islice(itertools.cycle(cached), warmup + iters)):
        _sync(device)
        t0 = time.perf_counter()
        losses = model(batch)
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            images += len(batch)
    return _rates("train", iters, images, sum(times))


def bench_eval(cfg, iters: int, warmup: int, device: str, weights: str) -> dict:
    model = instantiate(cfg.model).to(device)
    if weights:
        DetectionCheckpointer(model).load(weights)
    model.eval()
    inputs = [[d] for batch in instantiate(cfg.dataloader.test) for d in batch]
    if not inputs:
        raise SystemExit("cfg.dataloader.test yields no images")
    times = []
    with torch.no_grad():
        for i, batch in enumerate(itertools.islice(itertools.cycle(inputs), warmup + iters)):
            _sync(device)
            t0 = time.perf_counter()
            model(batch)
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return {**_rates("eval", iters, iters, sum(times)), "median s/image": float(np.median(times))}


def run(args) -> list[dict]:
    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    torch.manual_seed(0)
    rows = []
    for task in args.tasks:
        logger.info(f"Benchmarking {task}: {args.warmup} warm-up + {args.iters} timed iterations")
        if task == "data":
            rows.append(bench_data(cfg, args.iters, args.warmup))
        elif task == "train":
            rows.append(bench_train(cfg, args.iters, args.warmup, args.device))
        else:
            rows.append(bench_eval(cfg, args.iters, args.warmup, args.device, args.weights))
    print(
        f"Benchmark of {args.config_file} on {args.device} ({torch.get_num_threads()} threads):\n"
        + tabulate(rows, headers="keys", floatfmt=".4f", tablefmt="pipe")
    )
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE")
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    p.add_argument("--iters", type=int, default=20, help="timed iterations per task")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--weights", default="", help="checkpoint for the eval task (latency depends on the detections)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    args = parser().parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        raise SystemExit(f"--iters must be >= 1 and --warmup >= 0, got {args.iters}, {args.warmup}")
    setup_logger(name="net_detr2")
    return run(args)


if __name__ == "__main__":
    main()
