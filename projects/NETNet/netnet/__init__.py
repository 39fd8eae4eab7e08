"""NETNet: Neighbor Erasing and Transferring Network for single-shot detection (Li et al., CVPR 2020)."""

from __future__ import annotations

from .meta_arch import NETNet
from .modules import (
    GATES,
    NEM,
    NNFM,
    NTM,
    ChannelPoolGate,
    ConvGate,
    GlobalAttentionGate,
    LightFusion,
    NETNeck,
    TopDownPyramid,
    build_gate,
)

__all__ = [k for k in globals().keys() if not k.startswith("_")]
