"""Thin wrappers around torch ops: `Conv2d` with attached norm/activation and small tensor helpers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "Conv2d",
    "cat",
    "nonzero_tuple",
    "move_device_like",
    "shapes_to_tensor",
    "max_pool2d",
    "adaptive_max_pool2d",
]


def shapes_to_tensor(x: list[int], device: torch.device | None = None) -> torch.Tensor:
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


def cat(tensors: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """`torch.cat` that skips the copy when there is a single tensor."""
    assert isinstance(tensors, (list, tuple)), f"cat expects a list or tuple of tensors, got {type(tensors)}"
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(tensors, dim)


def nonzero_tuple(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
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


def _pool_channels_last(pool, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    # PyTorch's CPU max-pool kernels are several times faster on channels-last maps than on NCHW ones
    # (measured with one thread: VGG pool1 32 -> 10 ms, a 512-channel 38x38 map 4.2 -> 0.9 ms, both layout
    # copies included). The maximum is exact, so the output is identical; it comes back in NCHW.
    # In training, autograd keeps the channels-last copy for the backward: one more activation of x's size.
    if x.device.type != "cpu" or x.dim() != 4 or not x.is_contiguous():
        return pool(x, *args, **kwargs)
    return pool(x.contiguous(memory_format=torch.channels_last), *args, **kwargs).contiguous()


def max_pool2d(x: torch.Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> torch.Tensor:
    """`F.max_pool2d` (same arguments and result), faster on CPU. x: [N, C, H, W]."""
    return _pool_channels_last(F.max_pool2d, x, kernel_size, stride, padding, ceil_mode=ceil_mode)


def adaptive_max_pool2d(x: torch.Tensor, output_size) -> torch.Tensor:
    """`F.adaptive_max_pool2d` (same arguments and result), faster on CPU. x: [N, C, H, W]."""
    if torch.onnx.is_in_onnx_export():
        return _adaptive_max_pool2d_by_windows(x, output_size)
    return _pool_channels_last(F.adaptive_max_pool2d, x, output_size)


def _adaptive_max_pool2d_by_windows(x: torch.Tensor, output_size) -> torch.Tensor:
    """The same maxima as `F.adaptive_max_pool2d` (window i of n over a length L: [floor(iL/n), ceil((i+1)L/n))),
    as slices and reductions, rows then columns. ONNX has no adaptive pooling for sizes that do not divide
    (SSD300's 38 -> 10); the export fixes the sizes, so the windows are constants of the graph."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else (int(s) for s in output_size)
    rows = torch.stack([x[..., (i * h) // oh : -(-((i + 1) * h) // oh), :].amax(dim=-2) for i in range(oh)], dim=-2)
    return torch.stack([rows[..., (j * w) // ow : -(-((j + 1) * w) // ow)].amax(dim=-1) for j in range(ow)], dim=-1)
