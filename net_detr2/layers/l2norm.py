"""`L2Norm`: SSD's learnable per-channel rescaling of an L2-normalised feature map (conv4_3)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["L2Norm"]


class L2Norm(nn.Module):
    """y[n, c] = weight[c] * x[n, c] / (||x[n, :]||_2 + eps), the norm taken over channels per pixel.

    SSD applies it to VGG conv4_3, whose activations are much larger than those of later layers;
    the weight starts at `scale` (20) and is learnt.

    Args:
        n_channels: C.
        scale: initial value of every weight.
        eps: keeps all-zero pixels finite.
    """

    def __init__(self, n_channels: int, scale: float = 20.0, eps: float = 1e-10):
        super().__init__()
        self.n_channels = n_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.full((n_channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, C, H, W] -> [N, C, H, W]."""
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + self.eps
        return x / norm * self.weight.reshape(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.n_channels}, eps={self.eps}"
