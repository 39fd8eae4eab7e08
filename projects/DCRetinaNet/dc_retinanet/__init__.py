"""DC-RetinaNet: dynamic-coefficient loss, IoU-classification-aware assignment and CL-balanced NMS."""

from __future__ import annotations

from .assignment import IoUClassificationAwareMatcher, iou_classification_aware_score, promote_by_score
from .cl_balanced_nms import CLBalancedNMS, cl_balanced_nms
from .config_utils import DC_DEFAULTS, use_dc_retinanet
from .drop_in import use_cl_nms
from .dynamic_coefficient import dynamic_coefficient, normalized_coefficient
from .meta_arch import DCRetinaNet

__all__ = [
    "CLBalancedNMS",
    "DCRetinaNet",
    "DC_DEFAULTS",
    "IoUClassificationAwareMatcher",
    "cl_balanced_nms",
    "dynamic_coefficient",
    "iou_classification_aware_score",
    "normalized_coefficient",
    "promote_by_score",
    "use_cl_nms",
    "use_dc_retinanet",
]
