#!/usr/bin/env python
"""Convert Tsinghua-Tencent 100K (2016 release) to COCO json for its 45-class evaluation subset.

Input (``--root``, default ``$NET_DETR2_DATASETS/tt100k`` or ``datasets/tt100k``)::

    tt100k/data/annotations.json
    tt100k/data/train/ids.txt   tt100k/data/train/*.jpg
    tt100k/data/test/ids.txt    tt100k/data/test/*.jpg

Output::

    tt100k/annotations/tt100k_train_45.json
    tt100k/annotations/tt100k_test_45.json
    tt100k/annotations/tt100k_train_45_other.json   (the signs outside the 45 as a 46th class "other")

registered as ``tt100k_train`` / ``tt100k_test`` / ``tt100k_train_other`` (image root ``tt100k/data``).
Usage: ``python datasets/prepare_tt100k.py [--root PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from net_detr2.data.datasets.tt100k import (
        TT100K_45_CLASSES,
        TT100K_OTHER_CLASS,
        convert_tt100k_to_coco,
        load_tt100k_annotations,
    )

    default_root = os.path.join(os.environ.get("NET_DETR2_DATASETS", "datasets"), "tt100k")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=default_root, help=f"TT100K root (default {default_root})")
    ap.add_argument("--splits", nargs="+", default=["train", "test"])
    args = ap.parse_args(argv)

    data_dir = os.path.join(args.root, "data")
    annotations = load_tt100k_annotations(os.path.join(data_dir, "annotations.json"))
    out_dir = os.path.join(args.root, "annotations")
    os.makedirs(out_dir, exist_ok=True)
    for split in args.splits:
        ids_file = os.path.join(data_dir, split, "ids.txt")
        if not os.path.isfile(ids_file):
            raise FileNotFoundError(f"TT100K split file not found: {ids_file}")
        with open(ids_file) as f:
            ids = [line.strip() for line in f if line.strip()]
        label_sets = [("45", None)] + ([("45_other", TT100K_OTHER_CLASS)] if split == "train" else [])
        for suffix, other in label_sets:
            coco = convert_tt100k_to_coco(annotations, ids, TT100K_45_CLASSES, image_root=data_dir, other_class=other)
            out = os.path.join(out_dir, f"tt100k_{split}_{suffix}.json")
            tmp = out + ".tmp"
            with open(tmp, "w") as f:
                json.dump(coco, f)
            os.replace(tmp, out)
            print(f"{split}: {len(coco['images'])} images, {len(coco['annotations'])} objects ({suffix}) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
