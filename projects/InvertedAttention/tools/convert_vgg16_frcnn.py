#!/usr/bin/env python
"""Convert a torchvision VGG-16 ImageNet checkpoint (local file) into the init checkpoint of the
single-level VGG-16 Faster R-CNN (projects/InvertedAttention/configs/VOC/*VGG16*.py).

    python projects/InvertedAttention/tools/convert_vgg16_frcnn.py vgg16-397923af.pth pretrained/vgg16_frcnn.pth

As in the original Faster R-CNN, the 13 convs initialise the backbone (``backbone.conv1_1`` ...
``backbone.conv5_3``, conv1_1 flipped to BGR input) and the ImageNet classifier's fc6/fc7
(``classifier.0``/``classifier.3``, 25088 -> 4096 -> 4096) initialise the box head's ``fc1``/``fc2``
unchanged: a 512x7x7 RoI flattened in (C, H, W) order is exactly what fc6 saw after pool5. fc8 is dropped.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from net_detr2.checkpoint import CheckpointLoadError, atomic_write, load_pth
from net_detr2.compat.vgg_weights import convert_torchvision_vgg16_to_ssd

_FC = {"classifier.0": "roi_heads.box_head.fc1", "classifier.3": "roi_heads.box_head.fc2"}


def convert(state_dict: dict, to_bgr: bool = True) -> dict:
    """torchvision ``vgg16`` state dict -> state dict of the VGG-16 Faster R-CNN (backbone + box head)."""
    out = convert_torchvision_vgg16_to_ssd(state_dict, prefix="backbone.", to_bgr=to_bgr, with_fc=False)
    for src, dst in _FC.items():
        for kind in ("weight", "bias"):
            key = f"{src}.{kind}"
            if key not in state_dict:
                raise KeyError(f"convert_vgg16_frcnn: missing key {key!r} (is this a torchvision vgg16 state dict?)")
            out[f"{dst}.{kind}"] = state_dict[key].detach().clone()
    if tuple(out["roi_heads.box_head.fc1.weight"].shape) != (4096, 512 * 7 * 7):
        raise ValueError(
            "convert_vgg16_frcnn: classifier.0.weight has shape "
            f"{tuple(out['roi_heads.box_head.fc1.weight'].shape)}, expected (4096, 25088)"
        )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="torchvision vgg16 state dict (.pth)")
    parser.add_argument("output", help="where to write the converted checkpoint (.pth)")
    parser.add_argument("--rgb", action="store_true", help="keep conv1_1 in RGB order (default: flip to BGR)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.input):
        parser.error(f"input file not found: {args.input}")
    if os.path.exists(args.output) and os.path.samefile(args.input, args.output):
        parser.error(f"output {args.output} is the input file: choose another name (the original would be lost)")
    try:
        sd = load_pth(args.input)
    except (CheckpointLoadError, OSError) as e:
        parser.error(str(e))
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    out = convert(sd, to_bgr=not args.rgb)
    data = {"model": out, "__author__": "torchvision vgg16 via convert_vgg16_frcnn.py"}
    atomic_write(args.output, lambda f: torch.save(data, f))  # never a half-written checkpoint
    print(f"wrote {len(out)} tensors to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
