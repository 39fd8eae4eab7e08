"""VGG-16 backbone: the SSD variant (pool5 3x3/1, dilated fc6, fc7 as 1x1 conv) and plain truncations.

The same class serves two users:

* SSD / NETNet: ``out_features=["conv4_3", "fc7"]`` with an L2Norm on ``conv4_3`` (scale 20), as in
  the SSD paper; the extra SSD layers are added by `net_detr2.modeling.backbone.SSDBackbone`.
* Single-level Faster R-CNN: ``out_features=["conv5_3"]`` (stride 16); layers deeper than the
  deepest requested feature are not built, so no fc6/fc7 parameters exist in that case.

Layer names (``conv1_1`` ... ``conv5_3``, ``fc6``, ``fc7``) are the names used by the original VGG and
SSD releases; `net_detr2.compat.vgg_weights` maps a torchvision ``vgg16`` state dict onto them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from net_detr2.layers import Conv2d, L2Norm, ShapeSpec, get_norm, max_pool2d
from net_detr2.modeling.registry import BACKBONE_REGISTRY

from .backbone import Backbone

__all__ = ["VGG16", "VGG16_STAGES"]

# (stage name, number of 3x3 convs, output channels at width 1.0)
VGG16_STAGES = (("conv1", 2, 64), ("conv2", 2, 128), ("conv3", 3, 256), ("conv4", 3, 512), ("conv5", 3, 512))
# Output features in network order, with their stride; fc6 is internal (always followed by fc7).
_FEATURES = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3", "fc7")
_STRIDES = {"conv1_2": 1, "conv2_2": 2, "conv3_3": 4, "conv4_3": 8, "conv5_3": 16, "fc7": 16}


def _scaled(channels: int, width_mult: float) -> int:
    return max(4, int(round(channels * width_mult)))


@BACKBONE_REGISTRY.register()
class VGG16(Backbone):
    """VGG-16 (13 3x3 convs) with SSD's reduced fully-connected layers as convolutions.

    Args:
        out_features: names among ``conv1_2, conv2_2, conv3_3, conv4_3, conv5_3, fc7`` (``conv7`` is
            accepted as an alias of ``fc7``). Layers after the deepest one are not built.
        width_mult: multiplies every channel count (1.0 = the real VGG-16; small values for tests and
            from-scratch toy training).
        norm: normalisation after each conv ("" = none, as in VGG; "BN" for from-scratch training).
        l2norm_scale: if not None, ``conv4_3`` is *output* through an `L2Norm` with this initial scale
            (SSD uses 20); the network continues from the un-normalised map.
        fc_channels: channels of fc6/fc7 at width 1.0 (SSD: 1024).
        fc6_dilation: dilation of the 3x3 fc6 conv (SSD: 6, with matching padding).
        ceil_mode: max-pools round up (SSD: 300 -> 150 -> 75 -> 38 -> 19).
        freeze_at: freeze the first ``freeze_at`` conv stages (0 = train everything).
        in_channels: input channels.
    """

    def __init__(
        self,
        *,
        out_features: Sequence[str] = ("conv4_3", "fc7"),
        width_mult: float = 1.0,
        norm: str = "",
        l2norm_scale: float | None = 20.0,
        fc_channels: int = 1024,
        fc6_dilation: int = 6,
        ceil_mode: bool = True,
        freeze_at: int = 0,
        in_channels: int = 3,
    ):
        super().__init__()
        out_features = ["fc7" if f == "conv7" else f for f in out_features]
        if not out_features:
            raise ValueError("VGG16: out_features must name at least one feature")
        for f in out_features:
            if f not in _FEATURES:
                raise ValueError(f"VGG16: unknown out_feature {f!r}; choose from {list(_FEATURES)} (or 'conv7')")
        self._out_features = sorted(set(out_features), key=_FEATURES.index)
        self.ceil_mode = ceil_mode
        deepest = _FEATURES.index(self._out_features[-1])
        num_stages = min(deepest + 1, len(VGG16_STAGES))

        self.stage_names: list[str] = []
        self._out_feature_channels: dict[str, int] = {}
        self._out_feature_strides: dict[str, int] = {}
        c_in = in_channels
        for stage, depth, channels in VGG16_STAGES[:num_stages]:
            c_out = _scaled(channels, width_mult)
            for i in range(1, depth + 1):
                name = f"{stage}_{i}"
                conv = Conv2d(
                    c_in,
                    c_out,
                    kernel_size=3,
                    padding=1,
                    bias=not norm,
                    norm=get_norm(norm, c_out),
                    activation=nn.ReLU(inplace=True),
                )
                self.add_module(name, conv)
                c_in = c_out
            self.stage_names.append(stage)
            feat = f"{stage}_{depth}"
            self._out_feature_channels[feat] = c_out
            self._out_feature_strides[feat] = _STRIDES[feat]
        self.has_fc = deepest == len(_FEATURES) - 1
        if self.has_fc:
            c_fc = _scaled(fc_channels, width_mult)
            # fc6 as a dilated 3x3 conv after a 3x3/1 pool5: same receptive field, stride kept at 16.
            self.fc6 = Conv2d(
                c_in,
                c_fc,
                kernel_size=3,
                padding=fc6_dilation,
                dilation=fc6_dilation,
                bias=not norm,
                norm=get_norm(norm, c_fc),
                activation=nn.ReLU(inplace=True),
            )
            self.fc7 = Conv2d(
                c_fc, c_fc, kernel_size=1, bias=not norm, norm=get_norm(norm, c_fc), activation=nn.ReLU(inplace=True)
            )
            self._out_feature_channels["fc7"] = c_fc
            self._out_feature_strides["fc7"] = 16
        self.conv4_3_norm = None
        if l2norm_scale is not None and "conv4_3" in self._out_features:
            self.conv4_3_norm = L2Norm(self._out_feature_channels["conv4_3"], l2norm_scale)
        # Keep only the requested entries (output_shape() reads these dicts).
        self._out_feature_channels = {k: v for k, v in self._out_feature_channels.items() if k in self._out_features}
        self._out_feature_strides = {k: v for k, v in self._out_feature_strides.items() if k in self._out_features}
        self._init_weights()
        self.freeze(freeze_at)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def freeze(self, freeze_at: int = 0) -> VGG16:
        """Stop gradients for the first ``freeze_at`` conv stages (e.g. 2 = conv1_* and conv2_*)."""
        if not 0 <= freeze_at <= len(self.stage_names):
            raise ValueError(f"VGG16: freeze_at={freeze_at} must lie in [0, {len(self.stage_names)}]")
        for stage, depth, _ in VGG16_STAGES[:freeze_at]:
            for i in range(1, depth + 1):
                for p in getattr(self, f"{stage}_{i}").parameters():
                    p.requires_grad_(False)
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """
        Args:
            x: (N, C, H, W) normalised images.
        Returns:
            dict feature name -> (N, C_f, ceil(H/stride), ceil(W/stride)) (with ``ceil_mode``).
        """
        if x.dim() != 4:
            raise ValueError(f"VGG16 takes (N, C, H, W) inputs, got shape {tuple(x.shape)}")
        outputs: dict[str, torch.Tensor] = {}
        for stage_idx, stage in enumerate(self.stage_names):
            if stage_idx > 0:
                x = max_pool2d(x, kernel_size=2, stride=2, ceil_mode=self.ceil_mode)
            depth = VGG16_STAGES[stage_idx][1]
            for i in range(1, depth + 1):
                x = getattr(self, f"{stage}_{i}")(x)
            feat = f"{stage}_{depth}"
            if feat in self._out_features:
                if feat == "conv4_3" and self.conv4_3_norm is not None:
                    outputs[feat] = self.conv4_3_norm(x)
                else:
                    outputs[feat] = x
        if self.has_fc:
            x = max_pool2d(x, kernel_size=3, stride=1, padding=1)  # pool5: keeps stride 16
            x = self.fc7(self.fc6(x))
            outputs["fc7"] = x
        return outputs

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
        }
