"""ResNet / ResNeXt that also produces C2' (Table I): res2 run on the stem output *without* max-pool.

C2 and C2' come out of the very same ``res2`` module (one set of weights, one set of state-dict
keys), so a checkpoint of the plain ResNet loads unchanged. The stem convolution runs once; its
output feeds C2' directly and C2 after the stem's 3x3/2 max-pool.
"""

from __future__ import annotations

import torch

from net_detr2.layers import ShapeSpec
from net_detr2.modeling.backbone import ResNet

__all__ = ["ResNetC2Prime", "build_resnet_c2prime_backbone"]


class ResNetC2Prime(ResNet):
    """`ResNet` whose outputs also hold C2' (stride 2, res2's channels) under `c2_prime_name`.

    Args:
        *args, **kwargs: as for `ResNet` (``stem``, ``stages``, ``out_features``, ``freeze_at``).
        c2_prime_name: output key of C2'.

    The stem must be the standard one: a ``conv1`` (norm attached) followed by ReLU and a
    3x3/2 max-pool with padding 1 (detectron2's ``BasicStem``).
    """

    def __init__(self, *args, c2_prime_name: str = "res2_prime", **kwargs):
        super().__init__(*args, **kwargs)
        if not hasattr(self, "res2") or not hasattr(self.stem, "conv1"):
            raise ValueError("ResNetC2Prime: needs a stem with `conv1` and a `res2` stage to build C2'")
        if getattr(self, "num_classes", None) is not None:
            raise ValueError("ResNetC2Prime: a classification head (num_classes) is not supported")
        self.c2_prime_name = c2_prime_name
        self._out_feature_strides[c2_prime_name] = self._stage_stride("res2") // 2
        self._out_feature_channels[c2_prime_name] = self._stage_channels("res2")

    def _stage_stride(self, name: str) -> int:
        if name in self._out_feature_strides:
            return self._out_feature_strides[name]
        return 4  # res2: stem (conv /2 + pool /2), res2 itself keeps the resolution

    def _stage_channels(self, name: str) -> int:
        if name in self._out_feature_channels:
            return self._out_feature_channels[name]
        return getattr(self, name)[-1].out_channels

    def output_shape(self) -> dict[str, ShapeSpec]:
        shapes = super().output_shape()
        name = self.c2_prime_name
        shapes[name] = ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
        return shapes

    def forward(self, x: torch.Tensor, with_c2_prime: bool = True) -> dict[str, torch.Tensor]:
        """x: [N, C, H, W] -> {"res2": stride 4, ..., c2_prime_name: stride 2 (if with_c2_prime)}.

        ``with_c2_prime=False`` skips the stride-2 branch (the distillation teacher does not need it).
        """
        if x.dim() != 4:
            raise ValueError(f"ResNetC2Prime takes [N, C, H, W] inputs, got shape {tuple(x.shape)}")
        pre_pool = self.stem.forward_before_pool(x)
        outputs = self.forward_after_stem(self.stem.pool(pre_pool))
        if with_c2_prime:
            outputs[self.c2_prime_name] = self.res2(pre_pool)
        return outputs


def build_resnet_c2prime_backbone(*, c2_prime_name: str = "res2_prime", **resnet_kwargs) -> ResNetC2Prime:
    """`build_resnet_backbone` (same keyword arguments: depth, norm, num_groups, ...) as a `ResNetC2Prime`."""
    from net_detr2.modeling.backbone import build_resnet_backbone

    plain = build_resnet_backbone(**resnet_kwargs)
    # Reuse the built (and already frozen) stem and blocks; freeze_at=0 leaves their state as is.
    return ResNetC2Prime(
        plain.stem,
        [list(stage) for stage in plain.stages],
        out_features=list(plain._out_features),
        freeze_at=0,
        c2_prime_name=c2_prime_name,
    )
