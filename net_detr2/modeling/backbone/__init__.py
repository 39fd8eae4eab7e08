"""Backbones: ResNet, FPN, VGG16 and the SSD extra layers."""

from __future__ import annotations

from .backbone import Backbone
from .build import BACKBONE_REGISTRY, build_backbone
from .fpn import FPN, LastLevelMaxPool, LastLevelP6P7, build_resnet_fpn_backbone, build_retinanet_resnet_fpn_backbone
from .resnet import (
    BasicBlock,
    BasicStem,
    BottleneckBlock,
    CNNBlockBase,
    ResNet,
    build_resnet_backbone,
    make_stage,
)
from .ssd import SSDBackbone, ssd_extra_layers
from .vgg import VGG16

__all__ = [k for k in globals().keys() if not k.startswith("_")]
