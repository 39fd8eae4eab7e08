#!/usr/bin/env python
"""Convert a torchvision VGG-16 ImageNet checkpoint (local file) into an SSD/NETNet backbone checkpoint.

    python tools/convert_vgg16_to_ssd.py vgg16-397923af.pth output/vgg16_ssd.pth

The output is ``{"model": state_dict}`` with keys ``backbone.bottom_up.conv1_1.weight`` ... ``fc7.bias``,
loadable as ``train.init_checkpoint`` of the NETNet configs (heads and extra layers stay randomly
initialised). See `net_detr2.compat.vgg_weights` for the fc6/fc7 subsampling and the BGR flip.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from net_detr2.checkpoint import CheckpointLoadError, atomic_write, load_pth
from net_detr2.compat.vgg_weights import convert_torchvision_vgg16_to_ssd


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="torchvision vgg16 state dict (.pth)")
    parser.add_argument("output", help="where to write the converted checkpoint (.pth)")
    parser.add_argument("--prefix", default="backbone.bottom_up.", help="key prefix (default: %(default)s)")
    parser.add_argument("--rgb", action="store_true", help="keep conv1_1 in RGB order (default: flip to BGR)")
    parser.add_argument("--no-fc", action="store_true", help="drop fc6/fc7 (conv-only backbone, e.g. conv5_3)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.input):
        parser.error(f"input file not found: {args.input}")
    if os.path.exists(args.output) and os.path.samefile(args.input, args.output):
        parser.error(f"output {args.output} is the input file: choose another name (the original would be lost)")
    try:
        sd = load_pth(args.input)
    except (CheckpointLoadError, OSError) as e:
        parser.error(str(e))
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    out = convert_torchvision_vgg16_to_ssd(sd, prefix=args.prefix, to_bgr=not args.rgb, with_fc=not args.no_fc)
    data = {"model": out, "__author__": "torchvision vgg16 via tools/convert_vgg16_to_ssd.py"}
    atomic_write(args.output, lambda f: torch.save(data, f))  # never a half-written checkpoint
    print(f"wrote {len(out)} tensors to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
