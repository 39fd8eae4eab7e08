"""Compatibility with detectron2 and torchvision: YAML config conversion and weight converters."""

from __future__ import annotations

from .backbone_weights import adapt_backbone_checkpoint, convert_c2_resnet
from .d2_config import (
    D2Conversion,
    convert_d2_config,
    d2_config_to_lazy,
    d2_config_to_lazy_experiment,
    d2_input_config,
    load_d2_yaml,
)
from .torchvision_weights import TORCHVISION_PIXEL_MEAN, TORCHVISION_PIXEL_STD, convert_torchvision_resnet
from .vgg_weights import convert_torchvision_vgg16_to_ssd

__all__ = [k for k in globals().keys() if not k.startswith("_")]
