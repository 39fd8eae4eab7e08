"""Data structures shared by every part of net_detr2: boxes, per-image instances, padded image batches."""

from __future__ import annotations

from .boxes import (
    Boxes,
    BoxMode,
    matched_pairwise_iou,
    pairwise_intersection,
    pairwise_ioa,
    pairwise_iou,
    pairwise_point_box_distance,
)
from .image_list import ImageList
from .instances import Instances

__all__ = [k for k in globals().keys() if not k.startswith("_")]
