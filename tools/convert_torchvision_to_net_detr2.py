#!/usr/bin/env python
"""Convert a local torchvision ImageNet ResNet checkpoint into a net_detr2 backbone checkpoint.

Usage:
    python tools/convert_torchvision_to_net_detr2.py resnet50-0676ba61.pth R-50-torchvision.pth

The output is ``{"model": {name: tensor}, "matching_heuristics": False, "__author__": "torchvision"}``
with keys ``<prefix>stem.conv1.weight``, ``<prefix>res2.0.conv1.norm.weight``, ...; the default prefix
``backbone.bottom_up.`` matches detectron2's FPN detectors, use ``--prefix ""`` for a bare ResNet.

Models initialised from these weights must be configured like torchvision's network:
``stride_in_1x1=False``, ``input_format="RGB"``, ``pixel_mean=[123.675, 116.28, 103.53]``,
``pixel_std=[58.395, 57.12, 57.375]``; with ``--to-bgr``: ``input_format="BGR"`` and both lists
reversed (see net_detr2/compat/torchvision_weights.py).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from net_detr2.checkpoint import CheckpointLoadError, atomic_write, load_pth  # noqa: E402
from net_detr2.compat.torchvision_weights import (  # noqa: E402
    TORCHVISION_PIXEL_MEAN,
    TORCHVISION_PIXEL_STD,
    convert_torchvision_resnet,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="torchvision ResNet .pth (a state dict)")
    parser.add_argument("output", help="output .pth")
    parser.add_argument(
        "--prefix",
        default="backbone.bottom_up.",
        help="prepended to every key (default: %(default)s; '' for a bare ResNet)",
    )
    parser.add_argument("--keep-fc", action="store_true", help="keep the ImageNet classifier as linear.*")
    parser.add_argument(
        "--to-bgr", action="store_true", help="reverse the stem's input channels so the model takes BGR input"
    )
    args = parser.parse_args(argv)

    if os.path.exists(args.output) and os.path.samefile(args.input, args.output):
        parser.error(f"output {args.output} is the input file: choose another name (the original would be lost)")
    try:
        state_dict = load_pth(args.input)
    except (CheckpointLoadError, OSError) as e:
        parser.error(str(e))
    if not isinstance(state_dict, dict):
        parser.error(f"{args.input}: expected a state dict, got {type(state_dict).__name__}")
    try:
        model = convert_torchvision_resnet(state_dict, keep_fc=args.keep_fc, prefix=args.prefix, to_bgr=args.to_bgr)
    except ValueError as e:
        parser.error(f"{args.input}: {e}")
    out = {"model": model, "matching_heuristics": False, "__author__": "torchvision"}
    atomic_write(args.output, lambda f: torch.save(out, f))  # never a half-written checkpoint
    fmt, mean, std = (
        ("BGR", TORCHVISION_PIXEL_MEAN[::-1], TORCHVISION_PIXEL_STD[::-1])
        if args.to_bgr
        else ("RGB", TORCHVISION_PIXEL_MEAN, TORCHVISION_PIXEL_STD)
    )
    print(
        f"Wrote {len(model)} tensors to {args.output}.\n"
        f"Configure the model with stride_in_1x1=False, input_format={fmt!r}, pixel_mean={mean}, pixel_std={std}."
    )


if __name__ == "__main__":
    main()
