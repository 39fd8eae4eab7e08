"""Feature Pyramid Network (Lin et al. 2017) on top of any `Backbone`, with detectron2's module names.

State dict: ``fpn_lateral{s}.*`` / ``fpn_output{s}.*`` for each input level (s = log2 stride),
then ``bottom_up.*``, then ``top_block.*``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from fvcore.nn import weight_init
from torch import nn

from net_detr2.layers import Conv2d, ShapeSpec, get_norm
from net_detr2.modeling.registry import BACKBONE_REGISTRY

from .backbone import Backbone
from .resnet import build_resnet_backbone

__all__ = [
    "FPN",
    "LastLevelMaxPool",
    "LastLevelP6P7",
    "build_resnet_fpn_backbone",
    "build_retinanet_resnet_fpn_backbone",
]


class LastLevelMaxPool(nn.Module):
    """Extra level P6 = max-pool (kernel 1, stride 2) of P5, as in Faster R-CNN FPN's RPN."""

    def __init__(self):
        super().__init__()
        self.num_levels = 1
        self.in_feature = "p5"

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: P5 [N, C, H, W] -> [P6 [N, C, ceil(H/2), ceil(W/2)]]."""
        return [F.max_pool2d(x, kernel_size=1, stride=2, padding=0)]


class LastLevelP6P7(nn.Module):
    """RetinaNet's extra levels: P6 = conv3x3/2(`in_feature`), P7 = conv3x3/2(ReLU(P6)).

    Args:
        in_channels: channels of `in_feature` (C5's for "res5", the FPN width for "p5").
        out_channels: FPN width.
        in_feature: "res5" (bottom-up C5, detectron2's RetinaNet) or "p5".
    """

    def __init__(self, in_channels: int, out_channels: int, in_feature: str = "res5"):
        super().__init__()
        self.num_levels = 2
        self.in_feature = in_feature
        self.p6 = nn.Conv2d(in_channels, out_channels, 3, 2, 1)
        self.p7 = nn.Conv2d(out_channels, out_channels, 3, 2, 1)
        for module in [self.p6, self.p7]:
            weight_init.c2_xavier_fill(module)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        p6 = self.p6(x)
        p7 = self.p7(F.relu(p6))
        return [p6, p7]


class FPN(Backbone):
    """Top-down pathway with lateral connections over the bottom-up features `in_features`.

    For each input level (strides must double from one to the next): lateral 1x1 conv to
    `out_channels`; the coarser merged map is upsampled 2x (nearest) and fused (sum, or average
    with fuse_type="avg"); a 3x3 output conv gives P{s}. `top_block` appends coarser levels.

    Args:
        bottom_up: a `Backbone` producing `in_features`.
        in_features: bottom-up feature names, fine to coarse (e.g. ["res2", "res3", "res4", "res5"]).
        out_channels: width of every output level.
        norm: norm of the lateral and output convs ("" = none, then they carry a bias).
        top_block: None, `LastLevelMaxPool()` or `LastLevelP6P7(...)`; it reads the bottom-up
            feature or FPN output named by its `in_feature`.
        fuse_type: "sum" or "avg".
        square_pad: if > 0, inputs are padded to this square size (see `padding_constraints`).
    """

    def __init__(
        self,
        bottom_up: Backbone,
        in_features: Sequence[str],
        out_channels: int,
        norm="",
        top_block: nn.Module | None = None,
        fuse_type: str = "sum",
        square_pad: int = 0,
    ):
        super().__init__()
        if not isinstance(bottom_up, Backbone):
            raise TypeError(f"FPN bottom_up must be a Backbone, got {type(bottom_up).__name__}")
        if fuse_type not in ("sum", "avg"):
            raise ValueError(f"FPN fuse_type must be 'sum' or 'avg', got {fuse_type!r}")
        if not in_features:
            raise ValueError("FPN in_features is empty")
        input_shapes = bottom_up.output_shape()
        missing = [f for f in in_features if f not in input_shapes]
        if missing:
            raise ValueError(
                f"FPN in_features {missing} are not outputs of the bottom-up backbone (it gives {list(input_shapes)})"
            )
        strides = [input_shapes[f].stride for f in in_features]
        in_channels_per_feature = [input_shapes[f].channels for f in in_features]
        for i in range(1, len(strides)):
            if strides[i] != 2 * strides[i - 1]:
                raise ValueError(
                    f"FPN in_features strides must double from level to level; got {strides} for {list(in_features)}"
                )

        lateral_convs, output_convs = [], []
        use_bias = norm == ""
        for in_channels, stride in zip(in_channels_per_feature, strides):
            stage = int(math.log2(stride))
            lateral_conv = Conv2d(
                in_channels, out_channels, kernel_size=1, bias=use_bias, norm=get_norm(norm, out_channels)
            )
            output_conv = Conv2d(
                out_channels,
                out_channels,
                kernel_size=3,
                stride=1,
                padding=1,
                bias=use_bias,
                norm=get_norm(norm, out_channels),
            )
            weight_init.c2_xavier_fill(lateral_conv)
            weight_init.c2_xavier_fill(output_conv)
            self.add_module(f"fpn_lateral{stage}", lateral_conv)
            self.add_module(f"fpn_output{stage}", output_conv)
            lateral_convs.append(lateral_conv)
            output_convs.append(output_conv)
        # Plain lists (not ModuleLists) so that each conv appears once in the state dict; coarse first.
        self.lateral_convs = lateral_convs[::-1]
        self.output_convs = output_convs[::-1]
        self.top_block = top_block
        self.in_features = tuple(in_features)
        self.bottom_up = bottom_up

        self._out_feature_strides = {f"p{int(math.log2(s))}": s for s in strides}
        # input feature -> output level name (res2 -> p2 ...), and the names of the top block's levels
        self._level_names = {f: f"p{int(math.log2(s))}" for f, s in zip(in_features, strides)}
        self._top_block_levels = []
        if self.top_block is not None:
            last = int(math.log2(strides[-1]))
            for s in range(last, last + self.top_block.num_levels):
                self._out_feature_strides[f"p{s + 1}"] = 2 ** (s + 1)
                self._top_block_levels.append(f"p{s + 1}")
        self._out_features = list(self._out_feature_strides.keys())
        self._out_feature_channels = {k: out_channels for k in self._out_features}
        self._size_divisibility = strides[-1]
        self._square_pad = square_pad
        self._fuse_type = fuse_type

    @property
    def size_divisibility(self) -> int:
        return self._size_divisibility

    @property
    def padding_constraints(self) -> dict[str, int]:
        return {"square_size": self._square_pad}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: [N, C, H, W] (H, W best multiples of `size_divisibility`) -> {"p2": ..., ...} fine to coarse."""
        outputs, _ = self.top_down(self.bottom_up(x))
        return outputs

    def top_down(
        self, bottom_up_features: dict[str, torch.Tensor], *, keep_inner: bool = False
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The top-down pathway and the top block on given bottom-up features.

        The public step for necks that extend the FPN (e.g. EFPN adds a finer level from these maps).

        Args:
            bottom_up_features: at least the ``in_features`` maps (and the top block's input).
            keep_inner: also return the merged maps before their 3x3 output convs.
        Returns:
            ({"p2": ..., ...} every FPN level, fine to coarse, top block levels last;
            {"p2": ..., ...} the inner maps of the input levels when ``keep_inner``, else empty).
        """
        outputs: dict[str, torch.Tensor] = {}
        inner: dict[str, torch.Tensor] = {}
        prev = None
        for name, lateral_conv, output_conv in zip(self.in_features[::-1], self.lateral_convs, self.output_convs):
            lateral = lateral_conv(bottom_up_features[name])
            if prev is None:
                prev = lateral
            else:
                # Nearest upsampling to the lateral's size: exactly 2x for padded inputs (H, W multiples of
                # size_divisibility), and still defined for other sizes, where the levels are off by one.
                prev = lateral + F.interpolate(prev, size=lateral.shape[-2:], mode="nearest")
                if self._fuse_type == "avg":
                    prev = prev / 2
            level = self._level_names[name]
            outputs[level] = output_conv(prev)
            if keep_inner:
                inner[level] = prev
        outputs = dict(reversed(outputs.items()))
        if self.top_block is not None:
            source = self.top_block.in_feature
            if source in bottom_up_features:
                top_in = bottom_up_features[source]
            elif source in outputs:
                top_in = outputs[source]
            else:
                raise KeyError(
                    f"FPN top_block.in_feature {source!r} is neither a bottom-up feature "
                    f"({list(bottom_up_features)}) nor an FPN output ({list(outputs)})"
                )
            outputs.update(zip(self._top_block_levels, self.top_block(top_in)))
        return outputs, dict(reversed(inner.items()))

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
        }


BACKBONE_REGISTRY.register(FPN)


@BACKBONE_REGISTRY.register()
def build_resnet_fpn_backbone(
    *,
    in_features: Sequence[str] = ("res2", "res3", "res4", "res5"),
    out_channels: int = 256,
    fpn_norm="",
    fuse_type: str = "sum",
    resnet_out_features: Sequence[str] | None = None,
    **resnet_kwargs,
) -> FPN:
    """ResNet + FPN + `LastLevelMaxPool` (P2..P6), detectron2's Faster R-CNN FPN backbone.

    Args:
        in_features: ResNet levels the FPN reads (``MODEL.FPN.IN_FEATURES``).
        out_channels, fpn_norm, fuse_type: ``MODEL.FPN.{OUT_CHANNELS, NORM, FUSE_TYPE}``.
        resnet_out_features: ``MODEL.RESNETS.OUT_FEATURES``; default = in_features.
        **resnet_kwargs: passed to `build_resnet_backbone` (depth, norm, stride_in_1x1, ...).
    """
    bottom_up = build_resnet_backbone(out_features=list(resnet_out_features or in_features), **resnet_kwargs)
    return FPN(
        bottom_up=bottom_up,
        in_features=list(in_features),
        out_channels=out_channels,
        norm=fpn_norm,
        top_block=LastLevelMaxPool(),
        fuse_type=fuse_type,
    )


@BACKBONE_REGISTRY.register()
def build_retinanet_resnet_fpn_backbone(
    *,
    in_features: Sequence[str] = ("res3", "res4", "res5"),
    out_channels: int = 256,
    fpn_norm="",
    fuse_type: str = "sum",
    resnet_out_features: Sequence[str] | None = None,
    **resnet_kwargs,
) -> FPN:
    """ResNet + FPN + `LastLevelP6P7` on C5 (P3..P7), detectron2's RetinaNet backbone.

    Arguments as for `build_resnet_fpn_backbone`.
    """
    bottom_up = build_resnet_backbone(out_features=list(resnet_out_features or in_features), **resnet_kwargs)
    in_channels_p6p7 = bottom_up.output_shape()["res5"].channels
    return FPN(
        bottom_up=bottom_up,
        in_features=list(in_features),
        out_channels=out_channels,
        norm=fpn_norm,
        top_block=LastLevelP6P7(in_channels_p6p7, out_channels, in_feature="res5"),
        fuse_type=fuse_type,
    )
