"""Anchor generators: the reference boxes tiled over every feature-map location."""

from __future__ import annotations

import collections.abc
import math
from collections.abc import Sequence

import torch
from fvcore.common.registry import Registry
from torch import nn

from net_detr2.layers import ShapeSpec
from net_detr2.structures import Boxes

__all__ = ["ANCHOR_GENERATOR_REGISTRY", "BufferList", "DefaultAnchorGenerator", "generate_cell_anchors", "grid_shifts"]

ANCHOR_GENERATOR_REGISTRY = Registry("ANCHOR_GENERATOR")
ANCHOR_GENERATOR_REGISTRY.__doc__ = "Anchor generators: list of feature maps -> list of Boxes per level."


class BufferList(nn.Module):
    """A list of tensors kept as non-persistent buffers named "0", "1", ...

    Non-persistent so that they follow ``.to(device)`` but stay out of the state_dict (detectron2
    checkpoints do not contain anchors).
    """

    def __init__(self, buffers: Sequence[torch.Tensor]):
        super().__init__()
        for i, b in enumerate(buffers):
            self.register_buffer(str(i), b, persistent=False)

    def __len__(self) -> int:
        return len(self._buffers)

    def __iter__(self):
        return iter(self._buffers.values())

    def __getitem__(self, i: int) -> torch.Tensor:
        return self._buffers[str(i)]


def _broadcast_params(params, num_features: int, name: str) -> list:
    """Per-level parameter list: a flat list applies to every level; a list of lists is per level.

    e.g. ``sizes=[32, 64]`` -> the same two sizes on every level; ``sizes=[[32], [64]]`` -> one per level.
    """
    if not isinstance(params, collections.abc.Sequence) or isinstance(params, str):
        raise TypeError(f"DefaultAnchorGenerator: {name} must be a list, got {params!r}")
    if len(params) == 0:
        raise ValueError(f"DefaultAnchorGenerator: {name} must not be empty")
    if not isinstance(params[0], collections.abc.Sequence):
        return [list(params)] * num_features
    if len(params) == 1:
        return [list(params[0])] * num_features
    if len(params) != num_features:
        raise ValueError(
            f"DefaultAnchorGenerator: {name} has {len(params)} levels but there are {num_features} feature maps"
        )
    return [list(p) for p in params]


def generate_cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float]) -> torch.Tensor:
    """Anchors of one location, centred at (0, 0).

    Args:
        sizes: anchor sides sqrt(area) in pixels.
        aspect_ratios: height / width ratios.
    Returns:
        float32 [len(sizes) * len(aspect_ratios), 4] XYXY, size-major (all ratios of size 0 first).
        Not rounded to integers (detectron2's behaviour).
    """
    anchors = []
    for size in sizes:
        area = float(size) ** 2
        for ratio in aspect_ratios:
            # w * h = area and h / w = ratio
            w = math.sqrt(area / ratio)
            h = ratio * w
            anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(anchors, dtype=torch.float32)


def grid_shifts(
    grid_size: tuple[int, int], stride: int, offset: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) pixel offsets of every location of a (H, W) grid, row-major (y slow, x fast): two [H*W] tensors."""
    h, w = grid_size
    xs = torch.arange(offset * stride, w * stride, step=stride, dtype=torch.float32, device=device)
    ys = torch.arange(offset * stride, h * stride, step=stride, dtype=torch.float32, device=device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return xx.reshape(-1), yy.reshape(-1)


@ANCHOR_GENERATOR_REGISTRY.register()
class DefaultAnchorGenerator(nn.Module):
    """Axis-aligned anchors of several sizes and aspect ratios at every location of every level.

    Args:
        sizes: per level list of anchor sizes (or one flat list used on every level).
        aspect_ratios: per level list of h/w ratios (or one flat list).
        strides: stride of each level in input pixels.
        offset: anchor-centre offset in units of the stride: 0.0 puts the first centre at (0, 0),
            0.5 at (stride/2, stride/2).
    """

    box_dim: int = 4

    def __init__(self, *, sizes, aspect_ratios, strides: Sequence[int], offset: float = 0.0):
        super().__init__()
        self.strides = list(strides)
        self.num_features = len(self.strides)
        sizes = _broadcast_params(sizes, self.num_features, "sizes")
        aspect_ratios = _broadcast_params(aspect_ratios, self.num_features, "aspect_ratios")
        if not 0.0 <= offset < 1.0:
            raise ValueError(f"DefaultAnchorGenerator: offset must be in [0, 1), got {offset}")
        self.offset = offset
        self.cell_anchors = BufferList([generate_cell_anchors(s, a) for s, a in zip(sizes, aspect_ratios)])

    @classmethod
    def from_shapes(cls, input_shape: Sequence[ShapeSpec], **kwargs) -> DefaultAnchorGenerator:
        """Build with the strides read from the feature shapes."""
        return cls(strides=[s.stride for s in input_shape], **kwargs)

    @property
    def num_cell_anchors(self) -> list[int]:
        return self.num_anchors

    @property
    def num_anchors(self) -> list[int]:
        """Number of anchors per location on each level (e.g. [3, 3, 3, 3, 3])."""
        return [len(c) for c in self.cell_anchors]

    def _grid_anchors(self, grid_sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        out = []
        for size, stride, base in zip(grid_sizes, self.strides, self.cell_anchors):
            sx, sy = grid_shifts(size, stride, self.offset, base.device)
            shifts = torch.stack((sx, sy, sx, sy), dim=1)
            # order (y, x, a): anchor index fastest, matching the heads' permute(0, 2, 3, 1)
            out.append((shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4))
        return out

    def forward(self, features: list[torch.Tensor]) -> list[Boxes]:
        """features: list of [N, C, Hi, Wi] -> list of Boxes [Hi * Wi * A, 4] per level (same for all images)."""
        if len(features) != self.num_features:
            raise ValueError(
                f"DefaultAnchorGenerator: got {len(features)} feature maps, configured for {self.num_features} strides"
            )
        grid_sizes = [tuple(f.shape[-2:]) for f in features]
        return [Boxes(a) for a in self._grid_anchors(grid_sizes)]
