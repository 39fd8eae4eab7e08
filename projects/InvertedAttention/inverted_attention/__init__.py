"""Inverted Attention: gradient-guided attention inverted on RoI features during training.

Importing this package registers :class:`IAROIHeads` in ``ROI_HEADS_REGISTRY``.
"""

from __future__ import annotations

from .attention import (
    INVERSION_STRATEGIES,
    ORIENTATIONS,
    ROI_SELECTIONS,
    channel_inversion_mask,
    gradient_attention,
    inverted_attention_mask,
    select_random,
    select_top_per_group,
    spatial_inversion_mask,
)
from .ia_roi_heads import IAROIHeads

__all__ = [k for k in globals().keys() if not k.startswith("_")]
