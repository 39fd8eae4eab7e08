"""Axis-aligned boxes: the `Boxes` container, `BoxMode` conversions and pairwise overlaps."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import IntEnum

import numpy as np
import torch

_RawBoxType = list | tuple | np.ndarray | torch.Tensor


class BoxMode(IntEnum):
    """How the four numbers of a box are to be read.

    ``ABS`` modes are in pixels; ``REL`` modes are fractions of the image width/height.
    The integer values are detectron2's, so dataset dicts with ``bbox_mode`` stored as ints stay valid.
    """

    XYXY_ABS = 0
    XYWH_ABS = 1
    XYXY_REL = 2
    XYWH_REL = 3

    @staticmethod
    def convert(box: _RawBoxType, from_mode: BoxMode, to_mode: BoxMode, image_size=None) -> _RawBoxType:
        """Convert boxes between modes.

        Args:
            box: a single box (4 numbers, list/tuple) or an Nx4 array/tensor.
            from_mode, to_mode: `BoxMode` values (or their ints).
            image_size: (height, width), needed when exactly one of the modes is relative.
        Returns:
            the converted box(es), of the same type as ``box``.
        """
        from_mode, to_mode = BoxMode(from_mode), BoxMode(to_mode)
        if from_mode == to_mode:
            return box
        original_type = type(box)
        single = isinstance(box, (list, tuple))
        if single:
            if len(box) != 4:
                raise ValueError(f"BoxMode.convert: a single box must have 4 numbers, got {box!r}")
            arr = torch.tensor([box], dtype=torch.float64)
        elif isinstance(box, np.ndarray):
            arr = torch.from_numpy(np.asarray(box)).clone()
        elif isinstance(box, torch.Tensor):
            arr = box.clone()
        else:
            raise TypeError(f"BoxMode.convert: unsupported box type {original_type}")
        if arr.shape[-1] != 4:
            raise ValueError(
                f"BoxMode.convert: boxes must have 4 numbers in the last dim, got shape {tuple(arr.shape)}"
            )

        relative = {BoxMode.XYXY_REL, BoxMode.XYWH_REL}
        if (from_mode in relative) != (to_mode in relative):
            if image_size is None:
                raise ValueError(f"BoxMode.convert from {from_mode.name} to {to_mode.name} needs image_size=(h, w)")
            h, w = image_size
            scale = arr.new_tensor([w, h, w, h])
            arr = arr * scale if from_mode in relative else arr / scale

        from_xywh = from_mode in (BoxMode.XYWH_ABS, BoxMode.XYWH_REL)
        to_xywh = to_mode in (BoxMode.XYWH_ABS, BoxMode.XYWH_REL)
        if from_xywh and not to_xywh:
            arr[..., 2] = arr[..., 0] + arr[..., 2]
            arr[..., 3] = arr[..., 1] + arr[..., 3]
        elif to_xywh and not from_xywh:
            arr[..., 2] = arr[..., 2] - arr[..., 0]
            arr[..., 3] = arr[..., 3] - arr[..., 1]

        if single:
            return original_type(arr[0].tolist())
        if isinstance(box, np.ndarray):
            return arr.numpy()
        return arr


class Boxes:
    """A list of N boxes stored as an Nx4 float tensor in (x1, y1, x2, y2) absolute coordinates.

    Widths are ``x2 - x1`` (no +1). Indexing returns a new `Boxes` that shares storage when possible.
    """

    def __init__(self, tensor: _RawBoxType):
        if not isinstance(tensor, torch.Tensor):
            tensor = torch.as_tensor(np.asarray(tensor, dtype=np.float32))
        elif not tensor.is_floating_point():
            tensor = tensor.to(torch.float32)
        if tensor.numel() == 0:
            # keeps torch.cat / indexing well defined for empty inputs
            tensor = tensor.reshape(-1, 4)
        if tensor.dim() != 2 or tensor.size(-1) != 4:
            raise ValueError(f"Boxes: expected an Nx4 tensor, got shape {tuple(tensor.shape)}")
        self.tensor = tensor

    def clone(self) -> Boxes:
        return Boxes(self.tensor.clone())

    def to(self, *args, **kwargs) -> Boxes:
        return Boxes(self.tensor.to(*args, **kwargs))

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    def area(self) -> torch.Tensor:
        """Tensor [N]: width * height of each box."""
        b = self.tensor
        return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])

    def clip(self, box_size: tuple[int, int]) -> None:
        """Clip the boxes in place to the image (height, width): x into [0, width], y into [0, height]."""
        if not torch.isfinite(self.tensor).all():
            raise FloatingPointError("Boxes.clip: boxes contain inf or nan")
        h, w = box_size
        x1 = self.tensor[:, 0].clamp(min=0, max=w)
        y1 = self.tensor[:, 1].clamp(min=0, max=h)
        x2 = self.tensor[:, 2].clamp(min=0, max=w)
        y2 = self.tensor[:, 3].clamp(min=0, max=h)
        self.tensor = torch.stack((x1, y1, x2, y2), dim=-1)

    def nonempty(self, threshold: float = 0.0) -> torch.Tensor:
        """Bool tensor [N]: True for boxes whose width and height both exceed ``threshold``."""
        b = self.tensor
        return ((b[:, 2] - b[:, 0]) > threshold) & ((b[:, 3] - b[:, 1]) > threshold)

    def inside_box(self, box_size: tuple[int, int], boundary_threshold: int = 0) -> torch.Tensor:
        """Bool tensor [N]: boxes lying inside the (height, width) image, up to ``boundary_threshold`` pixels out."""
        h, w = box_size
        t = boundary_threshold
        b = self.tensor
        return (b[:, 0] >= -t) & (b[:, 1] >= -t) & (b[:, 2] < w + t) & (b[:, 3] < h + t)

    def get_centers(self) -> torch.Tensor:
        """Tensor [N, 2]: (x, y) centre of each box."""
        return (self.tensor[:, :2] + self.tensor[:, 2:]) / 2

    def scale(self, scale_x: float, scale_y: float) -> None:
        """Scale the coordinates in place (x by ``scale_x``, y by ``scale_y``)."""
        self.tensor[:, 0::2] *= scale_x
        self.tensor[:, 1::2] *= scale_y

    def __getitem__(self, item) -> Boxes:
        if isinstance(item, int):
            return Boxes(self.tensor[item].view(1, -1))
        b = self.tensor[item]
        if b.dim() != 2:
            raise IndexError(f"Boxes: indexing with {item!r} did not give a 2-D tensor")
        return Boxes(b)

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __repr__(self) -> str:
        return f"Boxes({self.tensor})"

    def __iter__(self) -> Iterator[torch.Tensor]:
        yield from self.tensor

    @classmethod
    def cat(cls, boxes_list: Sequence[Boxes]) -> Boxes:
        if not isinstance(boxes_list, (list, tuple)):
            raise TypeError("Boxes.cat expects a list of Boxes")
        if len(boxes_list) == 0:
            return cls(torch.empty(0, 4))
        if not all(isinstance(b, Boxes) for b in boxes_list):
            raise TypeError("Boxes.cat: every element must be a Boxes")
        return cls(torch.cat([b.tensor for b in boxes_list], dim=0))


def pairwise_intersection(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """Tensor [N, M]: intersection area of every pair of boxes."""
    a, b = boxes1.tensor, boxes2.tensor
    wh = (torch.min(a[:, None, 2:], b[None, :, 2:]) - torch.max(a[:, None, :2], b[None, :, :2])).clamp(min=0)
    return wh.prod(dim=2)


def pairwise_iou(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """Tensor [N, M]: intersection over union of every pair; 0 where the union is empty."""
    area1, area2 = boxes1.area(), boxes2.area()
    inter = pairwise_intersection(boxes1, boxes2)
    union = area1[:, None] + area2[None, :] - inter
    return torch.where(inter > 0, inter / union, torch.zeros(1, dtype=inter.dtype, device=inter.device))


def pairwise_ioa(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """Tensor [N, M]: intersection over the area of ``boxes2`` (intersection over area)."""
    area2 = boxes2.area()
    inter = pairwise_intersection(boxes1, boxes2)
    return torch.where(inter > 0, inter / area2[None, :], torch.zeros(1, dtype=inter.dtype, device=inter.device))


def pairwise_point_box_distance(points: torch.Tensor, boxes: Boxes) -> torch.Tensor:
    """Tensor [N, M, 4]: distances (left, top, right, bottom) from each of N points to the sides of M boxes."""
    x, y = points[:, 0, None], points[:, 1, None]
    b = boxes.tensor
    return torch.stack((x - b[None, :, 0], y - b[None, :, 1], b[None, :, 2] - x, b[None, :, 3] - y), dim=2)


def matched_pairwise_iou(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """Tensor [N]: IoU of boxes1[i] with boxes2[i]."""
    if len(boxes1) != len(boxes2):
        raise ValueError(f"matched_pairwise_iou: lengths differ ({len(boxes1)} vs {len(boxes2)})")
    a, b = boxes1.tensor, boxes2.tensor
    wh = (torch.min(a[:, 2:], b[:, 2:]) - torch.max(a[:, :2], b[:, :2])).clamp(min=0)
    inter = wh.prod(dim=1)
    return inter / (boxes1.area() + boxes2.area() - inter)
