"""`SSDBackbone`: a bottom-up backbone followed by SSD's extra layers (Liu et al., ECCV 2016)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from net_detr2.layers import Conv2d, get_norm

from .backbone import Backbone

__all__ = ["SSDBackbone", "ssd_extra_layers"]


def ssd_extra_layers(input_size: int, width_mult: float = 1.0) -> list[tuple[int, int, int, int, int]]:
    """SSD's extra layers after fc7 as (reduce channels, out channels, kernel, stride, padding).

    300: 19 -> 10 -> 5 -> 3 -> 1 (two stride-2 convs, two valid 3x3 convs).
    512: 32 -> 16 -> 8 -> 4 -> 2 -> 1 (four stride-2 convs, one 4x4 conv with padding 1).
    """
    if input_size == 300:
        spec = [(256, 512, 3, 2, 1), (128, 256, 3, 2, 1), (128, 256, 3, 1, 0), (128, 256, 3, 1, 0)]
    elif input_size == 512:
        spec = [(256, 512, 3, 2, 1), (128, 256, 3, 2, 1), (128, 256, 3, 2, 1), (128, 256, 3, 2, 1), (128, 256, 4, 1, 1)]
    else:
        raise ValueError(f"ssd_extra_layers: input_size must be 300 or 512, got {input_size!r}")
    s = lambda c: max(4, int(round(c * width_mult)))  # noqa: E731
    return [(s(m), s(o), k, st, p) for m, o, k, st, p in spec]


class SSDBackbone(Backbone):
    """A bottom-up backbone followed by SSD's extra layers, giving the 6 (300 input) or 7 (512) levels.

    Args:
        bottom_up: any `Backbone`; its ``in_features`` outputs are the first pyramid levels.
        in_features: names of bottom-up outputs used as levels, shallow to deep; the extra layers start
            from the last one.
        extra_layers: list of (reduce channels, out channels, kernel, stride, padding) (see
            `ssd_extra_layers`); each is conv1x1+ReLU then convKxK+ReLU. Outputs are named ``extra1``...
        norm: normalisation inside the extra layers ("" as in SSD; "BN" for from-scratch training).
    """

    def __init__(
        self, *, bottom_up: Backbone, in_features: Sequence[str], extra_layers: Sequence[Sequence[int]], norm: str = ""
    ):
        super().__init__()
        self.bottom_up = bottom_up
        shapes = bottom_up.output_shape()
        for f in in_features:
            if f not in shapes:
                raise ValueError(f"SSDBackbone: in_feature {f!r} is not a bottom-up output; available: {list(shapes)}")
        self.in_features = list(in_features)
        self._out_features = list(in_features)
        self._out_feature_channels = {f: shapes[f].channels for f in in_features}
        self._out_feature_strides = {f: shapes[f].stride for f in in_features}
        c_in = shapes[in_features[-1]].channels
        stride = shapes[in_features[-1]].stride
        self.extras = nn.ModuleList()
        for i, (mid, out, k, s, p) in enumerate(extra_layers, start=1):
            block = nn.Sequential(
                Conv2d(
                    c_in, mid, kernel_size=1, bias=not norm, norm=get_norm(norm, mid), activation=nn.ReLU(inplace=True)
                ),
                Conv2d(
                    mid,
                    out,
                    kernel_size=k,
                    stride=s,
                    padding=p,
                    bias=not norm,
                    norm=get_norm(norm, out),
                    activation=nn.ReLU(inplace=True),
                ),
            )
            self.extras.append(block)
            name = f"extra{i}"
            stride = stride * s
            self._out_features.append(name)
            self._out_feature_channels[name] = out
            self._out_feature_strides[name] = stride
            c_in = out
        for m in self.extras.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: [N, C, H, W] -> {in_features..., "extra1", ...}, shallow to deep."""
        bottom = self.bottom_up(x)
        out = {f: bottom[f] for f in self.in_features}
        y = out[self.in_features[-1]]
        for i, block in enumerate(self.extras, start=1):
            y = block(y)
            out[f"extra{i}"] = y
        return out
