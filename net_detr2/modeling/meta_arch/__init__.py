"""Meta-architectures: whole detectors (list[dict] in, losses or Instances out).

Importing this package registers every meta-architecture in META_ARCH_REGISTRY.
"""

from __future__ import annotations

from .base import DetectorBase
from .dense_detector import DenseDetector, permute_to_N_HWA_K
from .rcnn import GeneralizedRCNN, ProposalNetwork
from .retinanet import RetinaNet, RetinaNetHead
from .ssd import SSD

__all__ = [k for k in globals().keys() if not k.startswith("_")]
