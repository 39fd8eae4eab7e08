"""Box heads: pooled RoI features -> a feature vector per RoI."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from fvcore.common.registry import Registry
from fvcore.nn.weight_init import c2_msra_fill, c2_xavier_fill
from torch import nn

from net_detr2.layers import Conv2d, ShapeSpec, get_norm

__all__ = ["ROI_BOX_HEAD_REGISTRY", "FastRCNNConvFCHead", "as_shape_spec"]

ROI_BOX_HEAD_REGISTRY = Registry("ROI_BOX_HEAD")
ROI_BOX_HEAD_REGISTRY.__doc__ = "Box heads: pooled RoI features [R, C, h, w] -> [R, D] (or maps)."


def as_shape_spec(x, what: str) -> ShapeSpec:
    """A ShapeSpec from a ShapeSpec, a mapping of its fields (as configs store dataclasses) or a channel count."""
    if isinstance(x, ShapeSpec):
        return x
    if isinstance(x, int):
        return ShapeSpec(channels=x)
    if hasattr(x, "keys"):
        unknown = set(x.keys()) - {"channels", "height", "width", "stride"}
        if unknown:
            raise ValueError(f"{what}: unknown ShapeSpec fields {sorted(unknown)}")
        return ShapeSpec(**{k: x[k] for k in x.keys()})
    raise TypeError(f"{what}: expected a ShapeSpec, got {x!r}")


@ROI_BOX_HEAD_REGISTRY.register()
class FastRCNNConvFCHead(nn.Sequential):
    """Stacked 3x3 convs (conv1, conv2, ...) then fully connected layers (fc1, fc2, ...), ReLU after each.

    Args:
        input_shape: shape of the pooled features (channels, height, width).
        conv_dims: output channels of the convs (may be empty).
        fc_dims: output sizes of the fc layers (may be empty).
        conv_norm: norm after each conv ("", "BN", "GN", ...).
    """

    def __init__(self, input_shape: ShapeSpec, *, conv_dims: Sequence[int], fc_dims: Sequence[int], conv_norm=""):
        super().__init__()
        input_shape = as_shape_spec(input_shape, "FastRCNNConvFCHead input_shape")
        if len(conv_dims) + len(fc_dims) == 0:
            raise ValueError("FastRCNNConvFCHead: conv_dims and fc_dims are both empty")
        size = (input_shape.channels, input_shape.height, input_shape.width)
        self.conv_norm_relus = []
        for k, d in enumerate(conv_dims):
            conv = Conv2d(
                size[0],
                d,
                kernel_size=3,
                padding=1,
                bias=not conv_norm,
                norm=get_norm(conv_norm, d),
                activation=nn.ReLU(),
            )
            self.add_module(f"conv{k + 1}", conv)
            self.conv_norm_relus.append(conv)
            size = (d, size[1], size[2])
        self.fcs = []
        for k, d in enumerate(fc_dims):
            if k == 0:
                self.add_module("flatten", nn.Flatten())
            fc = nn.Linear(int(np.prod(size)), d)
            self.add_module(f"fc{k + 1}", fc)
            self.add_module(f"fc_relu{k + 1}", nn.ReLU())
            self.fcs.append(fc)
            size = d
        self._output_size = size
        for layer in self.conv_norm_relus:
            c2_msra_fill(layer)
        for layer in self.fcs:
            c2_xavier_fill(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x)
        return x

    @property
    def output_shape(self) -> ShapeSpec:
        o = self._output_size
        if isinstance(o, int):
            return ShapeSpec(channels=o)
        return ShapeSpec(channels=o[0], height=o[1], width=o[2])
