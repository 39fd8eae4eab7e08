"""Thin wrappers around torch ops: `Conv2d` with attached norm/activation and small tensor helpers."""
from typing import List, Optional, Tuple

import torch
from torch import nn

__all__ = ["Conv2d", "cat", "nonzero_tuple", "move_device_like", "shapes_to_tensor"]


def shapes_to_tensor(x: List[int], device: Optional[torch.device] = None) -> torch.Tensor:
    """Turn a list of ints (or 0-dim tensors, as met while tracing) into a 1-D int64 tensor."""
    if torch.jit.is_scripting():
        return torch.as_tensor(x, device=device)
    if torch.jit.is_tracing():
        assert all(isinstance(t, torch.Tensor) for t in x), "Shape should be tensor during tracing!"
        ret = torch.stack(x)
        if device is not None and ret.device != device:
            ret = ret.to(device=device)
        return ret
    return torch.as_tensor(x, device=device)


def cat(tensors: List[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """`torch.cat` that skips the copy when there is a single tensor."""
    assert isinstance(tensors, (list, tuple)), f"cat expects a list or tuple of tensors, got {type(tensors)}"
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(tensors, dim)


def nonzero_tuple(x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """`x.nonzero(as_tuple=True)`, also for 0-dim inputs (treated as 1-D)."""
    if x.dim() == 0:
        return x.unsqueeze(0).nonzero().unbind(1)
    return x.nonzero().unbind(1)


def move_device_like(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Move `src` to the device of `dst` (a no-op when they already share it)."""
    return src.to(dst.device)


class Conv2d(nn.Conv2d):
    """`nn.Conv2d` that also owns an optional normalisation and activation, applied in that order.

    Keeping the norm as a child module named ``norm`` gives the state-dict keys
    ``<conv>.weight``, ``<conv>.norm.weight``, ... that detectron2 checkpoints use.

    Args:
        *args, **kwargs: as for `nn.Conv2d`.
        norm (nn.Module or None): applied to the conv output.
        activation (callable or None): applied after the norm (e.g. `F.relu`).
    """

    def __init__(self, *args, **kwargs):
        norm = kwargs.pop("norm", None)
        activation = kwargs.pop("activation", None)
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A frozen BN is an affine map per output channel: fold it into the convolution, which is
        # exactly equal mathematically and saves one full pass over the output feature map.
        norm = self.norm
        if norm is not None and getattr(norm, "foldable_into_conv", False):
            scale, shift = norm.scale_shift()
            weight = self.weight * scale.reshape(-1, 1, 1, 1)
            bias = shift if self.bias is None else shift + self.bias * scale
            x = self._conv_forward(x, weight, bias)
        else:
            x = self._conv_forward(x, self.weight, self.bias)
            if norm is not None:
                x = norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x
