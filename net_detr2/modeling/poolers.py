"""`ROIPooler`: pools every box from the FPN level that suits its size."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.ops import RoIPool

from net_detr2.layers import ROIAlign, cat, nonzero_tuple
from net_detr2.structures import Boxes

__all__ = ["ROIPooler", "assign_boxes_to_levels", "convert_boxes_to_pooler_format"]


def assign_boxes_to_levels(
    box_lists: list[Boxes], min_level: int, max_level: int, canonical_box_size: int, canonical_level: int
) -> torch.Tensor:
    """FPN level of each box, as an index from ``min_level`` (FPN paper, Eq. 1).

    level = floor(canonical_level + log2(sqrt(area) / canonical_box_size)), clamped to
    [min_level, max_level]: a 224 px box goes to level 4, a 112 px one to level 3.

    Returns:
        int64 [total boxes] of ``level - min_level``.
    """
    sizes = torch.sqrt(cat([b.area() for b in box_lists]))
    # the 1e-8 keeps log2 finite for empty boxes
    levels = torch.floor(canonical_level + torch.log2(sizes / canonical_box_size + 1e-8))
    levels = torch.clamp(levels, min=min_level, max=max_level)
    return levels.to(torch.int64) - min_level


def convert_boxes_to_pooler_format(box_lists: list[Boxes]) -> torch.Tensor:
    """Per-image Boxes -> [R, 5] rows of (image index, x1, y1, x2, y2), as the ROIAlign kernels take them."""
    tensors = [b.tensor for b in box_lists]
    idx = cat([torch.full((len(t), 1), i, dtype=t.dtype, device=t.device) for i, t in enumerate(tensors)])
    return cat([idx, cat(tensors)], dim=1)


class ROIPooler(nn.Module):
    """Pool a fixed-size feature grid for every box from a multi-level feature pyramid.

    Args:
        output_size: pooled (h, w), or an int for a square.
        scales: 1/stride of each input level, finest first (e.g. 1/4, 1/8, 1/16, 1/32); each a power of 2.
        sampling_ratio: sampling points per bin side (0 = adaptive).
        pooler_type: "ROIAlignV2" (half-pixel aligned), "ROIAlign" (legacy) or "ROIPool".
        canonical_box_size, canonical_level: a box of this side maps to this level (224, 4 in the FPN paper).
    """

    def __init__(
        self,
        output_size,
        scales: Sequence[float],
        sampling_ratio: int,
        pooler_type: str,
        canonical_box_size: int = 224,
        canonical_level: int = 4,
    ):
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        if len(output_size) != 2:
            raise ValueError(f"ROIPooler: output_size must be an int or (h, w), got {output_size!r}")
        self.output_size = tuple(int(s) for s in output_size)
        if pooler_type == "ROIAlign":
            poolers = [ROIAlign(self.output_size, s, sampling_ratio, aligned=False) for s in scales]
        elif pooler_type == "ROIAlignV2":
            poolers = [ROIAlign(self.output_size, s, sampling_ratio, aligned=True) for s in scales]
        elif pooler_type == "ROIPool":
            poolers = [RoIPool(self.output_size, spatial_scale=s) for s in scales]
        else:
            raise ValueError(f"ROIPooler: unknown pooler_type {pooler_type!r} (ROIAlign, ROIAlignV2, ROIPool)")
        self.level_poolers = nn.ModuleList(poolers)

        min_level = -math.log2(scales[0])
        max_level = -math.log2(scales[-1])
        if not (math.isclose(min_level, round(min_level)) and math.isclose(max_level, round(max_level))):
            raise ValueError(f"ROIPooler: scales must be powers of 2, got {list(scales)}")
        self.min_level, self.max_level = int(round(min_level)), int(round(max_level))
        if len(scales) != self.max_level - self.min_level + 1:
            raise ValueError(f"ROIPooler: scales {list(scales)} do not form a contiguous pyramid")
        if canonical_box_size <= 0:
            raise ValueError(f"ROIPooler: canonical_box_size must be > 0, got {canonical_box_size}")
        self.canonical_level = canonical_level
        self.canonical_box_size = canonical_box_size

    def forward(self, x: list[torch.Tensor], box_lists: list[Boxes]) -> torch.Tensor:
        """x: per level [N, C, Hl, Wl]; box_lists: N Boxes in input pixels -> [total boxes, C, oh, ow]."""
        if not isinstance(x, (list, tuple)) or len(x) != len(self.level_poolers):
            raise ValueError(
                f"ROIPooler: expected a list of {len(self.level_poolers)} feature maps, got "
                f"{len(x) if isinstance(x, (list, tuple)) else type(x)}"
            )
        if len(box_lists) != x[0].size(0):
            raise ValueError(f"ROIPooler: {len(box_lists)} box lists for a batch of {x[0].size(0)} images")
        rois = convert_boxes_to_pooler_format(box_lists)
        if len(self.level_poolers) == 1:
            return self.level_poolers[0](x[0], rois)
        levels = assign_boxes_to_levels(
            box_lists, self.min_level, self.max_level, self.canonical_box_size, self.canonical_level
        )
        channels = x[0].shape[1]
        out = x[0].new_zeros((rois.size(0), channels) + self.output_size)
        for level, pooler in enumerate(self.level_poolers):
            inds = nonzero_tuple(levels == level)[0]
            # every box of a level in one kernel call; scatter back into box order
            out.index_put_((inds,), pooler(x[level], rois[inds]))
        return out
