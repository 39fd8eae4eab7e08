"""Fold BatchNorm into the convolution before it, for inference: `fuse_conv_bn`, `fuse_for_inference`.

At inference a BatchNorm with running statistics (and a `FrozenBatchNorm2d` always) is a fixed per-channel
affine map ``y = x * scale + shift``. Applied after a convolution it equals the convolution with weights
``W * scale`` (per output channel) and bias ``b * scale + shift``, so the fused network computes the same
function (up to fp32 rounding) without the norm's pass over every feature map.
"""

from __future__ import annotations

import copy
import types

import torch
from torch import nn

from .batch_norm import FrozenBatchNorm2d
from .wrappers import Conv2d

__all__ = ["foldable_norm", "fuse_conv_bn", "fuse_for_inference"]


def foldable_norm(norm: nn.Module | None) -> bool:
    """Whether ``norm`` acts as a fixed affine map at inference: a FrozenBatchNorm2d, or a BatchNorm that
    tracks running statistics (in eval mode it uses them; GroupNorm and batch-statistics-only BN do not fold).
    """
    if isinstance(norm, FrozenBatchNorm2d):
        return True
    return isinstance(norm, nn.modules.batchnorm._BatchNorm) and norm.running_mean is not None


def _norm_scale_shift(norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (scale, shift) [C] of a foldable norm's inference-time map ``y = x * scale + shift``."""
    if isinstance(norm, FrozenBatchNorm2d):
        return norm.scale_shift()
    inv_std = (norm.running_var + norm.eps).rsqrt()
    scale = inv_std if norm.weight is None else norm.weight * inv_std
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    return scale, shift


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, norm: nn.Module) -> None:
    """Fold ``norm`` (applied to ``conv``'s output) into ``conv``'s weight and bias, in place.

    Args:
        conv: an ``nn.Conv2d`` (or our `Conv2d`) with C output channels; a bias is added when it has none.
        norm: a `foldable_norm` over C channels. The caller removes it from the forward path.
    """
    if not foldable_norm(norm):
        raise ValueError(f"fuse_conv_bn: {type(norm).__name__} does not fold into a convolution")
    scale, shift = _norm_scale_shift(norm)
    if scale.numel() != conv.out_channels:
        raise ValueError(f"fuse_conv_bn: the norm has {scale.numel()} channels, the conv {conv.out_channels} outputs")
    weight = conv.weight
    conv.weight = nn.Parameter(weight * scale.to(weight.dtype).reshape(-1, 1, 1, 1), requires_grad=False)
    bias = shift if conv.bias is None else conv.bias * scale + shift
    conv.bias = nn.Parameter(bias.to(weight.dtype), requires_grad=False)


def _refuse_state_dict(module, prefix, keep_vars):
    raise RuntimeError(
        "This model comes from fuse_for_inference: its BatchNorms are folded into the convolutions, so its "
        "state dict no longer matches the checkpoint layout. Save the original model instead."
    )


def _train_inference_only(self: nn.Module, mode: bool = True) -> nn.Module:
    if mode:
        raise RuntimeError(
            "This model comes from fuse_for_inference and is for inference only (its BatchNorms are folded "
            "into the convolutions); train the original model."
        )
    return nn.Module.train(self, False)


def fuse_for_inference(model: nn.Module, *, channels_last: bool | None = None) -> nn.Module:
    """An eval-mode copy of ``model`` with every foldable BatchNorm folded into the convolution before it.

    Folded: our `Conv2d`'s attached ``norm`` (FrozenBN, or BN with running statistics), and inside any
    ``nn.Sequential`` a plain convolution directly followed by such a BN (e.g. `RetinaNetHead` with
    ``norm="BN"``), the BN then replaced by ``nn.Identity``. GroupNorm and anything after an activation stay.

    ``model`` itself is not changed, and its state-dict keys stay those of the checkpoints. The copy is for
    inference only: it refuses ``train()`` and ``state_dict()`` (its keys lack the norms).

    Args:
        channels_last: make the copy compute in channels-last (NHWC) layout: its ``channels_last`` flag (see
            `DetectorBase`) and the memory layout of its convolution weights (oneDNN's CPU kernels then skip a
            weight copy on every call: SSD300 in bf16, 0.49 -> 0.40 of fp32's network time). None = as
            ``model.channels_last`` says (False when it has no such attribute).
    Returns:
        the fused copy, in eval mode, on ``model``'s device.
    """
    fused = copy.deepcopy(model).eval()
    if channels_last is None:
        channels_last = bool(getattr(model, "channels_last", False))
    if channels_last:
        if not hasattr(fused, "channels_last"):
            raise ValueError(
                f"fuse_for_inference(channels_last=True): {type(model).__name__} has no channels_last switch "
                "(a DetectorBase has)"
            )
        fused.channels_last = True
        fused.to(memory_format=torch.channels_last)
    for module in list(fused.modules()):
        if isinstance(module, Conv2d) and foldable_norm(module.norm):
            fuse_conv_bn(module, module.norm)
            module.norm = None
        elif isinstance(module, nn.Sequential):
            layers = list(module)
            for i in range(len(layers) - 1):
                conv, norm = layers[i], layers[i + 1]
                plain_conv = type(conv) is nn.Conv2d or (
                    isinstance(conv, Conv2d) and conv.norm is None and conv.activation is None
                )
                if plain_conv and foldable_norm(norm):
                    fuse_conv_bn(conv, norm)
                    module[i + 1] = nn.Identity()
    fused.register_state_dict_pre_hook(_refuse_state_dict)
    # bound to the copy, so that a deepcopy of it rebinds to the new object
    fused.train = types.MethodType(_train_inference_only, fused)
    return fused
