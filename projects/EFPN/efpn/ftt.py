"""Feature super-resolution modules producing P3' (stride 4) from P3 (stride 8).

* `FeatureTextureTransfer` (FTT, the paper's Eq. 3): content extractor on P3, sub-pixel x2,
  texture extractor on concat(P2, content up), output = texture + content up.
* `ESPCNUpsampler`: the single-input "ESPCN-like" SR of the Table II ablation (no reference P2).
* `NearestUpsampler`: no SR at all (the "EFPN w/o FTT" row of Table III).

All three share one call signature ``module(p3, p2) -> p3_prime`` so the neck can swap them.
"""

from __future__ import annotations

import torch
from fvcore.nn import weight_init
from torch import nn
from torch.nn import functional as F

__all__ = ["ResidualBlock", "SubPixelUpsample", "FeatureTextureTransfer", "ESPCNUpsampler", "NearestUpsampler"]


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
    # Same initialisation as the FPN convolutions the module sits between.
    weight_init.c2_xavier_fill(conv)
    return conv


class ResidualBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3 + identity, no normalisation (the SR-network convention).

    Args:
        channels: C of the [N, C, H, W] input and output.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = _conv3x3(channels, channels)
        self.conv2 = _conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class SubPixelUpsample(nn.Module):
    """Sub-pixel convolution (Eq. 4): conv3x3 to C*r^2 channels, then PixelShuffle(r).

    [N, C_in, H, W] -> [N, C_out, r*H, r*W].
    """

    def __init__(self, in_channels: int, out_channels: int, scale: int = 2):
        super().__init__()
        self.conv = _conv3x3(in_channels, out_channels * scale * scale)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


def _extractor(in_channels: int, channels: int, num_blocks: int) -> nn.Sequential:
    """conv3x3 (in -> C) followed by `num_blocks` residual blocks."""
    layers: list[nn.Module] = [_conv3x3(in_channels, channels)]
    layers += [ResidualBlock(channels) for _ in range(num_blocks)]
    return nn.Sequential(*layers)


class FeatureTextureTransfer(nn.Module):
    """FTT (Eq. 3): ``P3' = E_t(P2 || E_c(P3)up) + E_c(P3)up``.

    Args:
        channels: C of P2, P3 and the output (the FPN width).
        num_content_blocks, num_texture_blocks: residual blocks in each extractor (2 in the paper).

    Inputs p3: [N, C, H, W]; p2: [N, C, 2H, 2W]. Output: [N, C, 2H, 2W].
    """

    def __init__(self, channels: int, num_content_blocks: int = 2, num_texture_blocks: int = 2):
        super().__init__()
        self.content_extractor = _extractor(channels, channels, num_content_blocks)
        self.upsample = SubPixelUpsample(channels, channels, scale=2)
        self.texture_extractor = _extractor(2 * channels, channels, num_texture_blocks)

    def forward(self, p3: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        content = self.upsample(self.content_extractor(p3))
        if content.shape[-2:] != p2.shape[-2:]:
            raise ValueError(
                f"FTT: the reference P2 {tuple(p2.shape)} must be exactly twice the size of P3 "
                f"{tuple(p3.shape)}; pad the input to the backbone's size_divisibility"
            )
        texture = self.texture_extractor(torch.cat([p2, content], dim=1))
        return texture + content


class ESPCNUpsampler(nn.Module):
    """Three-layer ESPCN on P3 alone: conv5x5-ReLU, conv3x3-ReLU, sub-pixel conv3x3 (x2).

    The hidden widths are C and C/2 (ESPCN's 64/32 ratio, scaled to feature maps).
    The reference P2 is ignored: this is the single-input SR baseline of Table II.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=5, padding=2)
        self.conv2 = _conv3x3(channels, channels // 2)
        self.upsample = SubPixelUpsample(channels // 2, channels, scale=2)
        weight_init.c2_xavier_fill(self.conv1)

    def forward(self, p3: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(p3))
        x = F.relu(self.conv2(x))
        return self.upsample(x)


class NearestUpsampler(nn.Module):
    """No feature SR: P3' = nearest x2 upsampling of P3 (Table III "EFPN w/o FTT")."""

    def forward(self, p3: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        return F.interpolate(p3, scale_factor=2.0, mode="nearest")
