"""Tsinghua-Tencent 100K traffic signs: conversion of its ``annotations.json`` to COCO json, and the
45-class evaluation subset (the classes with at least 100 instances, as in the EFPN paper).

The EFPN paper also trains on the signs outside the 45 classes ("for better generalization"): with
``other_class`` the conversion keeps them as one extra class after the 45 (``tt100k_train_other``), so a
detector learns them as signs rather than as background; evaluation stays on the 45."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

from .coco import register_coco_instances

__all__ = ["TT100K_45_CLASSES", "TT100K_OTHER_CLASS", "convert_tt100k_to_coco", "register_tt100k"]

logger = logging.getLogger(__name__)

# Categories of TT100K (2016 release) with >= 100 instances in train+test: the standard 45-class subset.
TT100K_45_CLASSES = (
    "i2",
    "i4",
    "i5",
    "il100",
    "il60",
    "il80",
    "io",
    "ip",
    "p10",
    "p11",
    "p12",
    "p19",
    "p23",
    "p26",
    "p27",
    "p3",
    "p5",
    "p6",
    "pg",
    "ph4",
    "ph4.5",
    "ph5",
    "pl100",
    "pl120",
    "pl20",
    "pl30",
    "pl40",
    "pl5",
    "pl50",
    "pl60",
    "pl70",
    "pl80",
    "pm20",
    "pm30",
    "pm55",
    "pn",
    "pne",
    "po",
    "pr40",
    "w13",
    "w32",
    "w55",
    "w57",
    "w59",
    "wo",
)
assert len(TT100K_45_CLASSES) == 45

# the name of the one class that collects every category outside the 45 (``other_class``)
TT100K_OTHER_CLASS = "other"


def convert_tt100k_to_coco(
    annotations: dict,
    image_ids: Sequence[str],
    classes: Sequence[str] = TT100K_45_CLASSES,
    image_root: str | None = None,
    default_size: tuple[int, int] = (2048, 2048),
    other_class: str | None = None,
) -> dict:
    """Convert the images ``image_ids`` of TT100K's ``annotations`` (the parsed ``annotations.json``) to a
    COCO instances dict over ``classes`` (ids 1..K in that order).

    Objects of other categories are left out (the usual 45-class protocol), or with ``other_class`` (a
    name not in ``classes``) labelled as that one extra class (id K+1); images without any object of
    ``classes`` are kept (they count for false positives). Image sizes are read from
    ``image_root/<path>`` when that file exists, else ``default_size`` = (height, width) (all TT100K images
    are 2048x2048). Raises naming the id for an id missing from the annotations.
    """
    imgs = annotations.get("imgs")
    if not isinstance(imgs, dict):
        raise KeyError("TT100K annotations: missing the 'imgs' dict")
    classes = list(classes)
    if other_class is not None:
        if other_class in classes:
            raise ValueError(f"TT100K conversion: other_class {other_class!r} is already one of the classes")
        classes.append(other_class)
    cat_id = {c: i + 1 for i, c in enumerate(classes)}
    other_id = cat_id.get(other_class)
    images, anns = [], []
    skipped = 0
    for n, sid in enumerate(image_ids):
        sid = str(sid).strip()
        if sid not in imgs:
            raise KeyError(f"TT100K annotations: image id {sid!r} (from the split's ids file) is not in 'imgs'")
        rec = imgs[sid]
        path = rec["path"]
        h, w = default_size
        if image_root is not None and os.path.isfile(os.path.join(image_root, path)):
            from PIL import Image

            with Image.open(os.path.join(image_root, path)) as im:
                w, h = im.size
        image_id = int(rec.get("id", n + 1)) if str(rec.get("id", "")).isdigit() else n + 1
        images.append({"id": image_id, "file_name": path, "height": h, "width": w})
        for obj in rec.get("objects", []):
            c = obj["category"]
            if c not in cat_id and other_id is None:
                skipped += 1
                continue
            b = obj["bbox"]
            x1, y1, x2, y2 = float(b["xmin"]), float(b["ymin"]), float(b["xmax"]), float(b["ymax"])
            bw, bh = x2 - x1, y2 - y1
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": cat_id.get(c, other_id),
                    "bbox": [x1, y1, bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                }
            )
    if skipped:
        logger.info(
            "TT100K conversion: left out %d objects of categories outside the %d classes", skipped, len(classes)
        )
    return {
        "info": {"description": f"Tsinghua-Tencent 100K, {len(classes)}-class subset (converted by net_detr2)"},
        "images": images,
        "annotations": anns,
        "categories": [{"id": i + 1, "name": c, "supercategory": "sign"} for i, c in enumerate(classes)],
    }


def register_tt100k(name: str, json_file: str, image_root: str, classes: Sequence[str] = TT100K_45_CLASSES) -> None:
    """Register a converted TT100K split (COCO json) with ``evaluator_type="tt100k"``."""
    register_coco_instances(name, {"thing_classes": list(classes), "evaluator_type": "tt100k"}, json_file, image_root)


def load_tt100k_annotations(path: str) -> dict:
    """Read TT100K's ``annotations.json``; raises naming the path when missing."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"TT100K annotations file not found: {path}")
    with open(path) as f:
        return json.load(f)
