"""Dataset loaders (COCO json, Pascal VOC, YOLO, TT100K, synthetic shapes and its claim-shaped variants) and
the built-in registrations."""

from __future__ import annotations

from .builtin import register_all_builtin
from .coco import load_coco_json, register_coco_instances
from .pascal_voc import load_voc_instances, register_pascal_voc
from .shapes import SHAPES_CLASSES, ShapesVariant, ensure_shapes_dataset, generate_shapes_dataset, register_shapes
from .shapes_variants import IRREGULAR_CLASSES, SHAPES_VARIANTS, register_shapes_variants
from .tt100k import TT100K_45_CLASSES, convert_tt100k_to_coco, register_tt100k
from .yolo import load_yolo_instances, read_yolo_class_names, register_yolo_dataset

register_all_builtin()

__all__ = [k for k in globals().keys() if not k.startswith("_")]
