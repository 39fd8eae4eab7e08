"""`ShapeSpec`: the static shape of a feature map, passed between model parts at construction time."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ShapeSpec"]


@dataclass
class ShapeSpec:
    """Shape of a tensor or feature map; every field is optional because producers often know only some.

    Attributes:
        channels: number of channels C.
        height, width: spatial size, when fixed (e.g. a pooled ROI feature).
        stride: the feature map's stride relative to the input image.
    """

    channels: int | None = None
    height: int | None = None
    width: int | None = None
    stride: int | None = None
