"""EFPN neck (Fig. 2b): the FPN levels P2-P6 unchanged, plus the extended level P2' at stride 2.

``P3' = SR(P3, P2)`` (FTT by default) and ``P2' = conv3x3(nearest_up2(P3') + conv1x1(C2'))`` (Eq. 1).
The class subclasses `FPN`, so P2-P6 use the same modules and state-dict keys (``fpn_lateral{k}``,
``fpn_output{k}``, ``bottom_up.*``) and a plain FPN checkpoint loads; the extension adds
``c2_prime_lateral``, ``ftt`` and ``p2_prime_output``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from fvcore.nn import weight_init
from torch import nn
from torch.nn import functional as F

from net_detr2.layers import Conv2d, get_norm
from net_detr2.modeling.backbone import FPN

from .ftt import ESPCNUpsampler, FeatureTextureTransfer, NearestUpsampler

__all__ = ["EFPN", "SR_MODULES", "FTT_INPUTS"]

SR_MODULES = ("ftt", "espcn", "nearest")
FTT_INPUTS = ("output", "inner")


class EFPN(FPN):
    """FPN + extended level.

    Args:
        sr_module: how P3' is made: "ftt" (default), "espcn" (single-input SR) or "nearest" (no SR).
        ftt_input: "output" (FPN output maps P3, P2; the paper's text) or "inner" (the top-down maps
            before the 3x3 output convs, as the public Detectron code does).
        num_content_blocks, num_texture_blocks: FTT residual blocks (2 and 2 in the paper).
        c2_prime_feature: key of C2' in the bottom-up outputs (a `ResNetC2Prime`).
        bottom_up, in_features, out_channels, norm, top_block, fuse_type, square_pad: as for `FPN`.

    Outputs: {"p2".."p6" as FPN, "p3_prime": stride 4, "p2_prime": stride 2}, all `out_channels` wide.
    """

    def __init__(
        self,
        bottom_up: nn.Module,
        in_features: Sequence[str],
        out_channels: int,
        norm="",
        top_block: nn.Module | None = None,
        fuse_type: str = "sum",
        square_pad: int = 0,
        *,
        sr_module: str = "ftt",
        ftt_input: str = "output",
        num_content_blocks: int = 2,
        num_texture_blocks: int = 2,
        c2_prime_feature: str = "res2_prime",
    ):
        super().__init__(
            bottom_up=bottom_up,
            in_features=in_features,
            out_channels=out_channels,
            norm=norm,
            top_block=top_block,
            fuse_type=fuse_type,
            square_pad=square_pad,
        )
        if sr_module not in SR_MODULES:
            raise ValueError(f"EFPN: sr_module={sr_module!r} is not one of {SR_MODULES}")
        if ftt_input not in FTT_INPUTS:
            raise ValueError(f"EFPN: ftt_input={ftt_input!r} is not one of {FTT_INPUTS}")
        for level in ("p2", "p3"):
            if level not in self._out_features:
                raise ValueError(f"EFPN: the FPN must output {level!r}; it outputs {self._out_features}")
        bottom_shapes = self.bottom_up.output_shape()
        if c2_prime_feature not in bottom_shapes:
            raise ValueError(
                f"EFPN: the bottom-up network has no {c2_prime_feature!r} output (got {list(bottom_shapes)}); "
                "use net_detr2_projects.EFPN.efpn.ResNetC2Prime"
            )
        channels = self._out_feature_channels["p2"]
        use_bias = norm == ""
        self.sr_module = sr_module
        self.ftt_input = ftt_input
        self.c2_prime_feature = c2_prime_feature

        self.c2_prime_lateral = Conv2d(
            bottom_shapes[c2_prime_feature].channels,
            channels,
            kernel_size=1,
            bias=use_bias,
            norm=get_norm(norm, channels),
        )
        if sr_module == "ftt":
            self.ftt = FeatureTextureTransfer(channels, num_content_blocks, num_texture_blocks)
        elif sr_module == "espcn":
            self.ftt = ESPCNUpsampler(channels)
        else:
            self.ftt = NearestUpsampler()
        self.p2_prime_output = Conv2d(
            channels, channels, kernel_size=3, padding=1, bias=use_bias, norm=get_norm(norm, channels)
        )
        for conv in (self.c2_prime_lateral, self.p2_prime_output):
            weight_init.c2_xavier_fill(conv)

        self._out_features = list(self._out_features) + ["p3_prime", "p2_prime"]
        self._out_feature_strides["p3_prime"] = self._out_feature_strides["p3"] // 2
        self._out_feature_strides["p2_prime"] = self._out_feature_strides["p2"] // 2
        self._out_feature_channels["p3_prime"] = channels
        self._out_feature_channels["p2_prime"] = channels

    def forward_base(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The plain FPN on x (no C2', no extension): the distillation teacher's pass.

        Returns ({"p2".."p6"}, {inner top-down maps}).
        """
        return self.top_down(self.bottom_up(x, with_c2_prime=False), keep_inner=True)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: [N, 3, H, W] with H, W multiples of `size_divisibility` -> the extended pyramid."""
        bottom_up_features = self.bottom_up(x, with_c2_prime=True)
        c2_prime = bottom_up_features.pop(self.c2_prime_feature)
        results, inner = self.top_down(bottom_up_features, keep_inner=self.ftt_input == "inner")
        del bottom_up_features  # the big stride-2/4 maps go as soon as they are used (inference memory)
        sr_inputs = inner if self.ftt_input == "inner" else results
        p3_prime = self.ftt(sr_inputs["p3"], sr_inputs["p2"])
        del inner, sr_inputs
        lateral = self.c2_prime_lateral(c2_prime)
        del c2_prime
        merged = F.interpolate(p3_prime, scale_factor=2.0, mode="nearest")
        if merged.shape[-2:] != lateral.shape[-2:]:
            raise ValueError(
                f"EFPN: input {tuple(x.shape)} gives C2' {tuple(lateral.shape)} but upsampled P3' "
                f"{tuple(merged.shape)}; pad the input to a multiple of {self.size_divisibility}"
            )
        if torch.is_grad_enabled():
            merged = merged + lateral
        else:
            merged += lateral  # no autograd: reuse the buffer, one stride-2 map less at the peak
        del lateral
        results["p3_prime"] = p3_prime
        results["p2_prime"] = self.p2_prime_output(merged)
        return {name: results[name] for name in self._out_features}
