"""ROI heads: proposal sampling, RoI pooling, box head and box predictor."""

from __future__ import annotations

from .box_head import ROI_BOX_HEAD_REGISTRY, FastRCNNConvFCHead
from .fast_rcnn import (
    FastRCNNOutputLayers,
    fast_rcnn_inference,
    fast_rcnn_inference_single_image,
    select_class_boxes,
)
from .roi_heads import ROIHeads, StandardROIHeads, select_foreground_proposals

__all__ = [k for k in globals().keys() if not k.startswith("_")]
