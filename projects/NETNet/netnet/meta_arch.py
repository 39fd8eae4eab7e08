"""`NETNet`: SSD whose pyramid is reconfigured by a `NETNeck` before the detection heads."""

from __future__ import annotations

import torch

from net_detr2.modeling.meta_arch.ssd import SSD
from net_detr2.modeling.registry import META_ARCH_REGISTRY

from .modules import NETNeck

__all__ = ["NETNet"]


@META_ARCH_REGISTRY.register()
class NETNet(SSD):
    """Single-shot detector with Neighbor Erasing and Transferring (NETNet).

    Args:
        net: the `NETNeck` (NNFM/TDP fusion + NETMs) applied to the backbone pyramid.
        **kwargs: everything `SSD` takes (backbone, head, prior_generator, num_classes, ...).
    """

    def __init__(self, *, net: NETNeck, **kwargs):
        super().__init__(**kwargs)
        self.net = net
        shapes = self.backbone.output_shape()
        channels = [shapes[f].channels for f in self.head_in_features]
        if list(net.in_channels) != channels:
            raise ValueError(
                f"NETNet: net.in_channels={list(net.in_channels)} do not match the backbone levels "
                f"{self.head_in_features} with channels {channels}"
            )

    def extract_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.net(super().extract_features(images))
