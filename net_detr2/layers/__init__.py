"""Basic layers shared by all models (detectron2's `detectron2.layers`)."""

from __future__ import annotations

from .batch_norm import FrozenBatchNorm2d, NaiveSyncBatchNorm, convert_frozen_batchnorm, get_norm
from .l2norm import L2Norm
from .nms import batched_nms, nms
from .roi_align import ROIAlign
from .shape_spec import ShapeSpec
from .wrappers import Conv2d, adaptive_max_pool2d, cat, max_pool2d, move_device_like, nonzero_tuple, shapes_to_tensor

__all__ = [k for k in globals().keys() if not k.startswith("_")]
