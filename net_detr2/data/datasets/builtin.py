"""Registration of the built-in datasets (done on ``import net_detr2.data``).

Real datasets, the Aquarium photo set included, live under ``$NET_DETR2_DATASETS`` (default
``./datasets``; layouts in datasets/README.md); the synthetic ``shapes`` set is generated on first use
into ``$NET_DETR2_CACHE``, and so are its claim-shaped variants (``shapes_small_clutter``,
``shapes_occluded``, ``shapes_irregular``). No dataset is read at import (only Aquarium's small ``data.yaml``, for its
class names): asking for a dataset whose files are missing raises naming the path that was looked for.
"""

from __future__ import annotations

import os

from net_detr2.data.catalog import DatasetCatalog

from .builtin_meta import get_builtin_metadata
from .coco import register_coco_instances
from .pascal_voc import register_pascal_voc
from .shapes import register_shapes
from .shapes_variants import SHAPES_VARIANTS, register_shapes_variants
from .tt100k import register_tt100k
from .yolo import register_yolo_dataset

__all__ = ["register_all_builtin", "datasets_root"]

_COCO_SPLITS = {
    "coco_2014_train": ("coco/train2014", "coco/annotations/instances_train2014.json"),
    "coco_2014_val": ("coco/val2014", "coco/annotations/instances_val2014.json"),
    "coco_2014_minival": ("coco/val2014", "coco/annotations/instances_minival2014.json"),
    "coco_2014_valminusminival": ("coco/val2014", "coco/annotations/instances_valminusminival2014.json"),
    "coco_2017_train": ("coco/train2017", "coco/annotations/instances_train2017.json"),
    "coco_2017_val": ("coco/val2017", "coco/annotations/instances_val2017.json"),
}

# VOC2012's test annotations are not public, so there is no voc_2012_test.
_VOC_SPLITS = [
    ("voc_2007_trainval", "VOC2007", "trainval", 2007),
    ("voc_2007_train", "VOC2007", "train", 2007),
    ("voc_2007_val", "VOC2007", "val", 2007),
    ("voc_2007_test", "VOC2007", "test", 2007),
    ("voc_2012_trainval", "VOC2012", "trainval", 2012),
    ("voc_2012_train", "VOC2012", "train", 2012),
    ("voc_2012_val", "VOC2012", "val", 2012),
]

_TT100K_SPLITS = {
    "tt100k_train": ("tt100k/data", "tt100k/annotations/tt100k_train_45.json"),
    "tt100k_test": ("tt100k/data", "tt100k/annotations/tt100k_test_45.json"),
}


def datasets_root() -> str:
    """``$NET_DETR2_DATASETS`` or ``./datasets``."""
    return os.path.expanduser(os.environ.get("NET_DETR2_DATASETS", "datasets"))


def register_all_builtin(root: str | None = None) -> None:
    """Register every built-in dataset name not registered yet."""
    root = datasets_root() if root is None else root
    coco_meta = get_builtin_metadata("coco")
    for name, (image_root, json_file) in _COCO_SPLITS.items():
        if name not in DatasetCatalog:
            register_coco_instances(name, coco_meta, os.path.join(root, json_file), os.path.join(root, image_root))
    for name, dirname, split, year in _VOC_SPLITS:
        if name not in DatasetCatalog:
            register_pascal_voc(name, os.path.join(root, dirname), split, year)
    for name, (image_root, json_file) in _TT100K_SPLITS.items():
        if name not in DatasetCatalog:
            register_tt100k(name, os.path.join(root, json_file), os.path.join(root, image_root))
    for split in ("train", "valid"):
        name = f"aquarium_{split}"
        if name not in DatasetCatalog:
            register_yolo_dataset(name, os.path.join(root, "aquarium"), split)
    if "shapes_train" not in DatasetCatalog:
        register_shapes()
    if not any(f"{name}_train" in DatasetCatalog for name in SHAPES_VARIANTS):
        register_shapes_variants()
