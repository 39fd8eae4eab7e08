"""Normalisation layers: `FrozenBatchNorm2d`, a naive `SyncBN`, and `get_norm` to build one by name."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "FrozenBatchNorm2d",
    "NaiveSyncBatchNorm",
    "get_norm",
    "convert_frozen_batchnorm",
    "untrained_frozen_batchnorms",
]


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d whose statistics and affine parameters are fixed buffers.

    Output = (x - running_mean) / sqrt(running_var + eps) * weight + bias, per channel, in
    train and eval mode alike. All four tensors are buffers (no gradient, no
    ``num_batches_tracked``), matching detectron2 checkpoints.

    Args:
        num_features: number of channels C of the NCHW input.
        eps: added to the variance; 1e-5 as in `nn.BatchNorm2d`.
    """

    # Tells `Conv2d` it may fold this affine map into its own weights.
    foldable_into_conv = True

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    def scale_shift(self):
        """Per-channel (scale, shift), both shape [C], with ``y = x * scale + shift``."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return scale, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, C, H, W] (or [N, C]) -> same shape."""
        scale, shift = self.scale_shift()
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * scale.reshape(shape).to(x.dtype) + shift.reshape(shape).to(x.dtype)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # Checkpoints converted from a trainable BN carry a counter we have no use for.
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"

    @classmethod
    def convert_frozen_batchnorm(cls, module: nn.Module) -> nn.Module:
        """Replace every BatchNorm2d / SyncBatchNorm in `module` by a FrozenBatchNorm2d holding its stats.

        Returns the converted module: a new object when `module` itself is a BN, otherwise `module`
        changed in place.
        """
        if isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm)):
            res = cls(module.num_features, eps=module.eps)
            if module.affine:
                res.weight.data = module.weight.data.clone().detach()
                res.bias.data = module.bias.data.clone().detach()
            if module.track_running_stats:
                res.running_mean.data = module.running_mean.data.clone()
                res.running_var.data = module.running_var.data.clone()
            return res
        for name, child in module.named_children():
            new_child = cls.convert_frozen_batchnorm(child)
            if new_child is not child:
                module.add_module(name, new_child)
        return module

    @classmethod
    def convert_frozenbatchnorm2d_to_batchnorm(cls, module: nn.Module) -> nn.Module:
        """Inverse of `convert_frozen_batchnorm`: every FrozenBatchNorm2d becomes a trainable BatchNorm2d
        with the same statistics and affine values (e.g. to fine-tune the norms)."""
        if isinstance(module, FrozenBatchNorm2d):
            res = nn.BatchNorm2d(module.num_features, eps=module.eps).to(module.weight.device)
            with torch.no_grad():
                res.weight.copy_(module.weight)
                res.bias.copy_(module.bias)
                res.running_mean.copy_(module.running_mean)
                res.running_var.copy_(module.running_var)
            return res
        for name, child in module.named_children():
            new_child = cls.convert_frozenbatchnorm2d_to_batchnorm(child)
            if new_child is not child:
                module.add_module(name, new_child)
        return module


convert_frozen_batchnorm = FrozenBatchNorm2d.convert_frozen_batchnorm


class NaiveSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are averaged over all processes.

    Works on any device (unlike `nn.SyncBatchNorm`, which needs CUDA); in eval mode or with a
    single process it is exactly `nn.BatchNorm2d`. Every process must hold the same per-GPU
    batch size, since processes are weighted equally.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if world == 1 or not self.training:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # differentiable all-reduce

        c = x.shape[1]
        # Statistics in fp32 even under autocast: E[x^2] - E[x]^2 cancels catastrophically in bf16/fp16.
        xf = x.float()
        mean = xf.mean(dim=[0, 2, 3])
        meansqr = (xf * xf).mean(dim=[0, 2, 3])
        stats = all_reduce(torch.cat([mean, meansqr]) / world)
        mean, meansqr = stats[:c], stats[c:]
        var = meansqr - mean * mean
        # Running stats are updated as BatchNorm2d would (unbiased variance over the global batch).
        n = x.numel() // c * world
        with torch.no_grad():
            self.num_batches_tracked += 1
            # momentum None = cumulative average, as in nn.BatchNorm2d
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * n / max(n - 1, 1), alpha=m)
        invstd = torch.rsqrt(var + self.eps)
        scale = self.weight * invstd
        shift = self.bias - mean * scale
        return (xf * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)).to(x.dtype)


def _group_norm(channels: int) -> nn.Module:
    # detectron2's "GN" = 32 groups.
    return nn.GroupNorm(32, channels)


_NORMS = {
    "BN": nn.BatchNorm2d,
    "SyncBN": NaiveSyncBatchNorm,
    "naiveSyncBN": NaiveSyncBatchNorm,
    "nnSyncBN": nn.SyncBatchNorm,
    "FrozenBN": FrozenBatchNorm2d,
    "GN": _group_norm,
}


def get_norm(norm: str | Callable[[int], nn.Module] | None, out_channels: int) -> nn.Module | None:
    """Build a normalisation layer for `out_channels` channels.

    Args:
        norm: "" or None (no norm: returns None), one of "BN", "SyncBN" (= "naiveSyncBN": statistics
            averaged over processes, any device), "nnSyncBN" (`nn.SyncBatchNorm`, CUDA only),
            "FrozenBN", "GN" (32 groups), or a callable ``channels -> nn.Module``.
    """
    if norm is None:
        return None
    if isinstance(norm, str):
        if norm == "":
            return None
        if norm not in _NORMS:
            raise ValueError(f"Unknown norm {norm!r}; expected one of {sorted(_NORMS)} or ''")
        norm = _NORMS[norm]
    return norm(out_channels)


def untrained_frozen_batchnorms(model: nn.Module) -> list[str]:
    """Names of the `FrozenBatchNorm2d` layers of ``model`` that still hold their initial identity map
    (weight 1, bias 0, mean 0, variance 1 - eps): no checkpoint gave them statistics.

    Frozen BatchNorm only makes sense with pretrained statistics; from random initialisation it normalises
    nothing, and a deep ResNet's activations (and losses) grow by orders of magnitude.
    """
    names = []
    for name, m in model.named_modules():
        if isinstance(m, FrozenBatchNorm2d):
            identity = (
                bool((m.weight == 1).all())
                and not bool(m.bias.any())
                and not bool(m.running_mean.any())
                and bool(torch.allclose(m.running_var, torch.full_like(m.running_var, 1 - m.eps)))
            )
            if identity:
                names.append(name)
    return names
