"""Anchor generators: the reference boxes tiled over every feature-map location.

`DefaultAnchorGenerator` (R-CNN / RetinaNet anchors, by size and aspect ratio per level) and
`DefaultBoxGenerator` (SSD's default boxes, by min/max size per level, clipped to the image).
"""

from __future__ import annotations

import collections.abc
import math
from collections.abc import Sequence

import torch
from fvcore.common.registry import Registry
from torch import nn

from net_detr2.layers import ShapeSpec
from net_detr2.structures import Boxes

__all__ = [
    "ANCHOR_GENERATOR_REGISTRY",
    "BufferList",
    "DefaultAnchorGenerator",
    "DefaultBoxGenerator",
    "generate_cell_anchors",
    "grid_shifts",
    "ssd_default_box_sizes",
]

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


# Default-box presets of the original SSD release (they differ by dataset and input size).
_SSD_RATIOS_300 = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
_SSD_RATIOS_512 = ((2,), (2, 3), (2, 3), (2, 3), (2, 3), (2,), (2,))
_SSD_PRESETS = {
    (300, "coco"): dict(
        steps=(8, 16, 32, 64, 100, 300),
        min_sizes=(21, 45, 99, 153, 207, 261),
        max_sizes=(45, 99, 153, 207, 261, 315),
        aspect_ratios=_SSD_RATIOS_300,
    ),
    (300, "voc"): dict(
        steps=(8, 16, 32, 64, 100, 300),
        min_sizes=(30, 60, 111, 162, 213, 264),
        max_sizes=(60, 111, 162, 213, 264, 315),
        aspect_ratios=_SSD_RATIOS_300,
    ),
    (512, "coco"): dict(
        steps=(8, 16, 32, 64, 128, 256, 512),
        min_sizes=(20.48, 51.2, 133.12, 215.04, 296.96, 378.88, 460.8),
        max_sizes=(51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72),
        aspect_ratios=_SSD_RATIOS_512,
    ),
    (512, "voc"): dict(
        steps=(8, 16, 32, 64, 128, 256, 512),
        min_sizes=(35.84, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8),
        max_sizes=(76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6),
        aspect_ratios=_SSD_RATIOS_512,
    ),
}


def ssd_default_box_sizes(input_size: int, dataset: str) -> dict[str, tuple]:
    """The SSD release's default-box settings for ``input_size`` in {300, 512} and ``dataset`` in {coco, voc}.

    Returns:
        dict with ``steps``, ``min_sizes``, ``max_sizes`` (pixels) and ``aspect_ratios`` per level, ready to
        be passed as keyword arguments to `DefaultBoxGenerator`.
    """
    key = (int(input_size), str(dataset).lower())
    if key not in _SSD_PRESETS:
        raise ValueError(
            f"ssd_default_box_sizes: no preset for input_size={input_size!r}, dataset={dataset!r}; "
            f"known: {sorted(_SSD_PRESETS)}"
        )
    return dict(_SSD_PRESETS[key])


@ANCHOR_GENERATOR_REGISTRY.register()
class DefaultBoxGenerator(nn.Module):
    """SSD default boxes ("priors") for every level, as (P, 4) XYXY boxes in input-image pixels.

    Per level a min size s_k, sqrt(s_k * s_k+1) and s_k with each aspect ratio r and 1/r, centred on a
    grid with the level's step, clipped to the image. Order: level, then row, then column, then box
    (min square, sqrt(min*max) square, then for each aspect ratio r the boxes r and 1/r) -- the order
    `SSDHead` flattens its predictions in.

    Args:
        min_sizes, max_sizes: per level, pixels (see `ssd_default_box_sizes`).
        aspect_ratios: per level, the ratios r >= 1 (each gives two boxes, w/h = r and 1/r).
        steps: per level, the centre spacing in pixels; None = image size / feature size.
        clip: clip the boxes to the image.
        offset: centre offset in units of the step (0.5 = cell centre).
    """

    def __init__(
        self,
        *,
        min_sizes: Sequence[float],
        max_sizes: Sequence[float],
        aspect_ratios: Sequence[Sequence[float]],
        steps: Sequence[float] | None = None,
        clip: bool = True,
        offset: float = 0.5,
    ):
        super().__init__()
        n = len(min_sizes)
        if len(max_sizes) != n or len(aspect_ratios) != n or (steps is not None and len(steps) != n):
            raise ValueError(
                "DefaultBoxGenerator: min_sizes, max_sizes, aspect_ratios (and steps) need one entry per level; got "
                f"{len(min_sizes)}, {len(max_sizes)}, {len(aspect_ratios)}, {None if steps is None else len(steps)}"
            )
        for m, M in zip(min_sizes, max_sizes):
            if not 0 < m <= M:
                raise ValueError(f"DefaultBoxGenerator: need 0 < min_size <= max_size, got {m} and {M}")
        self.min_sizes = [float(m) for m in min_sizes]
        self.max_sizes = [float(m) for m in max_sizes]
        self.aspect_ratios = [tuple(float(r) for r in rs) for rs in aspect_ratios]
        self.steps = None if steps is None else [float(s) for s in steps]
        self.clip = clip
        self.offset = offset
        self._cache: dict[tuple, torch.Tensor] = {}

    @property
    def num_levels(self) -> int:
        return len(self.min_sizes)

    @property
    def num_anchors(self) -> list[int]:
        """Boxes per location for each level."""
        return [2 + 2 * len(r) for r in self.aspect_ratios]

    def box_sizes(self, level: int) -> torch.Tensor:
        """(A, 2) widths and heights of the boxes of one level, in generation order."""
        m, M = self.min_sizes[level], self.max_sizes[level]
        sizes = [(m, m), (math.sqrt(m * M),) * 2]
        for r in self.aspect_ratios[level]:
            sr = math.sqrt(r)
            sizes += [(m * sr, m / sr), (m / sr, m * sr)]
        return torch.tensor(sizes, dtype=torch.float32)

    def forward(
        self, feature_shapes: Sequence[tuple[int, int]], image_size: tuple[int, int], device=None
    ) -> torch.Tensor:
        """
        Args:
            feature_shapes: (H_l, W_l) of every level.
            image_size: (height, width) of the network input.
        Returns:
            (P, 4) float32 XYXY default boxes, P = sum_l H_l * W_l * A_l.
        """
        if len(feature_shapes) != self.num_levels:
            raise ValueError(
                f"DefaultBoxGenerator: got {len(feature_shapes)} feature maps but default boxes are configured for "
                f"{self.num_levels} levels"
            )
        key = (tuple(tuple(int(v) for v in s) for s in feature_shapes), tuple(int(v) for v in image_size), str(device))
        if key not in self._cache:
            self._cache[key] = self._generate(feature_shapes, image_size).to(device)
        return self._cache[key]

    def _generate(self, feature_shapes, image_size) -> torch.Tensor:
        img_h, img_w = float(image_size[0]), float(image_size[1])
        all_boxes = []
        for level, (h, w) in enumerate(feature_shapes):
            step_y = self.steps[level] if self.steps is not None else img_h / h
            step_x = self.steps[level] if self.steps is not None else img_w / w
            cy = (torch.arange(h, dtype=torch.float32) + self.offset) * step_y
            cx = (torch.arange(w, dtype=torch.float32) + self.offset) * step_x
            cy, cx = torch.meshgrid(cy, cx, indexing="ij")
            centers = torch.stack([cx, cy], dim=-1).reshape(h, w, 1, 2)
            half = self.box_sizes(level).reshape(1, 1, -1, 2) / 2
            boxes = torch.cat([centers - half, centers + half], dim=-1).reshape(-1, 4)
            all_boxes.append(boxes)
        boxes = torch.cat(all_boxes, dim=0)
        if self.clip:
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, img_w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, img_h)
        return boxes
