"""`Backbone`: the interface every feature extractor implements."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch
from torch import nn

from net_detr2.layers import ShapeSpec

__all__ = ["Backbone"]


class Backbone(nn.Module, metaclass=ABCMeta):
    """Image tensor -> dict of named feature maps.

    Subclasses set ``self._out_features`` (names, in output order), ``self._out_feature_channels``
    and ``self._out_feature_strides`` (name -> int), from which `output_shape` is derived.
    """

    def __init__(self):
        super().__init__()

    @abstractmethod
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: [N, C, H, W] -> {feature name: [N, C_f, H/stride_f, W/stride_f]}."""

    @property
    def size_divisibility(self) -> int:
        """Input height and width must be multiples of this (0: no constraint); the model pads to it."""
        return 0

    @property
    def padding_constraints(self) -> dict[str, int]:
        """Extra padding rules, e.g. ``{"square_size": 1024}`` pads every batch to that square (0/absent: none).

        ``size_divisibility`` here, when present, overrides the property of the same name.
        """
        return {}

    def output_shape(self) -> dict[str, ShapeSpec]:
        """{feature name: ShapeSpec(channels, stride)} for every output feature."""
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
        }
