#!/usr/bin/env python
"""Parameters, FLOPs, activations and a per-module table of the model of any config (fvcore's counters).

    python tools/analyze_model.py --config-file configs/shapes/faster_rcnn_R18_FPN.py
    python tools/analyze_model.py --config-file cfg.py --tasks flop -n 10            # mean over 10 test images
    python tools/analyze_model.py --config-file cfg.py --input-size 800 1216         # a synthetic image instead
    python tools/analyze_model.py --config-file cfg.py --tasks parameter structure

FLOPs count one multiply-add as one flop (fvcore's convention, as in detectron2's tool) over the inference
graph, post-processing included; the table lists FLOPs, activations (output elements of convolutions and
matrix multiplications) and parameters per module down to ``--max-depth``. Inputs are the first ``-n``
images of ``cfg.dataloader.test`` after its resizing, or, with ``--input-size H W``, one random image of
that size. Operators fvcore has no formula for (NMS, RoIAlign, element-wise ops) are listed and not counted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from net_detr2.checkpoint import DetectionCheckpointer  # noqa: E402
from net_detr2.config import LazyConfig, instantiate  # noqa: E402
from net_detr2.utils.logger import setup_logger  # noqa: E402

logger = logging.getLogger("net_detr2.analyze")
TASKS = ("flop", "activation", "parameter", "structure")


def _inputs(cfg, args) -> list[list[dict]]:
    """Batches of one image each."""
    if args.input_size:
        h, w = args.input_size
        g = torch.Generator().manual_seed(0)
        image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
        return [[{"image": image, "height": h, "width": w}]]
    if "test" not in cfg.get("dataloader", {}):
        raise SystemExit(f"{args.config_file}: no cfg.dataloader.test to take images from; pass --input-size H W")
    batches = []
    for batch in instantiate(cfg.dataloader.test):
        batches += [[d] for d in batch]
        if len(batches) >= args.num_inputs:
            break
    return batches[: args.num_inputs]


def analyze(args) -> dict:
    """Run the tasks; prints the tables and returns ``{"flops": [...], "activations": [...], "parameters": n}``."""
    from fvcore.nn import flop_count_table, parameter_count_table

    from net_detr2.utils.analysis import activation_count, flop_count, parameter_count

    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    model = instantiate(cfg.model)
    model.to(args.device)
    if args.weights:
        DetectionCheckpointer(model).load(args.weights)
    model.eval()
    result: dict = {"parameters": parameter_count(model)[""]}
    tasks = set(args.tasks)
    if "parameter" in tasks:
        print(f"Parameters: {result['parameters']:,}\n" + parameter_count_table(model, max_depth=args.max_depth))
    if "structure" in tasks:
        print(f"Model structure:\n{model}")
    if tasks & {"flop", "activation"}:
        batches = _inputs(cfg, args)
        flops, acts = [], []
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about data-dependent branches
            for i, batch in enumerate(batches):
                batch = [{**d, "image": d["image"].to(args.device)} for d in batch]
                f = flop_count(model, batch) if "flop" in tasks else None
                a = activation_count(model, batch) if "activation" in tasks or i == 0 else None
                if f is not None:
                    flops.append(f.total())
                if a is not None:
                    acts.append(a.total())
                if i == 0 and f is not None:
                    size = tuple(batch[0]["image"].shape[-2:])
                    print(f"Per-module table of input 0 (image {size[0]}x{size[1]}):")
                    print(flop_count_table(f, max_depth=args.max_depth, activations=a))
                    if f.unsupported_ops():
                        ops = ", ".join(f"{k} ({v}x)" for k, v in sorted(f.unsupported_ops().items()))
                        print(f"Not counted (no flop formula): {ops}")
        result.update(flops=flops, activations=acts)
        if flops:
            print(
                f"FLOPs (multiply-adds) over {len(flops)} input(s): "
                f"{np.mean(flops) / 1e9:.4f} G +- {np.std(flops) / 1e9:.4f} G"
            )
        if acts and "activation" in tasks:
            print(f"Activations over {len(acts)} input(s): {np.mean(acts) / 1e6:.4f} M +- {np.std(acts) / 1e6:.4f} M")
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE")
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=["parameter", "flop", "activation"])
    p.add_argument("-n", "--num-inputs", type=int, default=1, help="test images to average FLOPs over")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), help="a random image instead of test data")
    p.add_argument(
        "--weights",
        default="",
        help="checkpoint to load: the RoI heads' FLOPs depend on how many proposals survive NMS",
    )
    p.add_argument("--max-depth", type=int, default=3, help="module depth of the tables")
    p.add_argument("--device", default="cpu")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    if args.num_inputs < 1:
        raise SystemExit(f"--num-inputs must be >= 1, got {args.num_inputs}")
    setup_logger(name="net_detr2")
    return analyze(args)


if __name__ == "__main__":
    main()
