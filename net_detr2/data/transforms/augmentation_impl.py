"""The standard augmentations: flips, resizes, crops and colour jitter (detectron2's names and arguments)."""

from __future__ import annotations

import sys

import numpy as np

from .augmentation import Augmentation
from .transform import (
    BlendTransform,
    CropTransform,
    HFlipTransform,
    NoOpTransform,
    ResizeTransform,
    VFlipTransform,
)

__all__ = [
    "RandomFlip",
    "Resize",
    "ResizeShortestEdge",
    "RandomCrop",
    "RandomBrightness",
    "RandomContrast",
    "RandomSaturation",
]


class RandomFlip(Augmentation):
    """Flip horizontally (default) or vertically with probability ``prob``."""

    def __init__(self, prob: float = 0.5, *, horizontal: bool = True, vertical: bool = False):
        super().__init__()
        if horizontal and vertical:
            raise ValueError("RandomFlip: cannot flip horizontally and vertically at once; use two RandomFlips")
        if not horizontal and not vertical:
            raise ValueError("RandomFlip: at least one of horizontal or vertical must be True")
        self._init(locals())

    def get_transform(self, image):
        h, w = image.shape[:2]
        if self._rand_range() < self.prob:
            return HFlipTransform(w) if self.horizontal else VFlipTransform(h)
        return NoOpTransform()


class Resize(Augmentation):
    """Resize to a fixed ``shape`` = (h, w) or a single int for a square."""

    def __init__(self, shape, interp="bilinear"):
        super().__init__()
        if isinstance(shape, int):
            shape = (shape, shape)
        self.shape = tuple(int(s) for s in shape)
        self.interp = interp

    def get_transform(self, image):
        return ResizeTransform(image.shape[0], image.shape[1], self.shape[0], self.shape[1], self.interp)


class ResizeShortestEdge(Augmentation):
    """Scale so the short edge is ``short_edge_length`` while the long edge stays <= ``max_size``.

    ``short_edge_length``: an int, or a tuple sampled per image: ``sample_style="range"`` draws an int
    uniformly in ``[min, max]``; ``"choice"`` picks one of the values. Rounding: ``int(x + 0.5)``.
    """

    def __init__(self, short_edge_length, max_size: int = sys.maxsize, sample_style: str = "range", interp="bilinear"):
        super().__init__()
        if sample_style not in ("range", "choice"):
            raise ValueError(f"ResizeShortestEdge: sample_style must be 'range' or 'choice', got {sample_style!r}")
        self.is_range = sample_style == "range"
        if isinstance(short_edge_length, int):
            short_edge_length = (short_edge_length, short_edge_length)
        short_edge_length = tuple(int(s) for s in short_edge_length)
        if self.is_range and len(short_edge_length) != 2:
            raise ValueError(f"ResizeShortestEdge: sample_style='range' needs (min, max), got {short_edge_length}")
        self.short_edge_length = short_edge_length
        self.max_size = max_size
        self.sample_style = sample_style
        self.interp = interp

    def get_transform(self, image):
        h, w = image.shape[:2]
        if self.is_range:
            size = int(np.random.randint(self.short_edge_length[0], self.short_edge_length[1] + 1))
        else:
            size = int(np.random.choice(self.short_edge_length))
        if size == 0:
            return NoOpTransform()
        newh, neww = self.get_output_shape(h, w, size, self.max_size)
        return ResizeTransform(h, w, newh, neww, self.interp)

    @staticmethod
    def get_output_shape(oldh: int, oldw: int, short_edge_length: int, max_size: int) -> tuple[int, int]:
        """Output (h, w) for an input of (oldh, oldw)."""
        scale = short_edge_length * 1.0 / min(oldh, oldw)
        newh, neww = oldh * scale, oldw * scale
        if max(newh, neww) > max_size:
            scale = max_size * 1.0 / max(newh, neww)
            newh, neww = newh * scale, neww * scale
        return int(newh + 0.5), int(neww + 0.5)


class RandomCrop(Augmentation):
    """Crop a random window whose size depends on ``crop_type``:

    - "relative": ``(H * crop_size[0], W * crop_size[1])``
    - "relative_range": fractions drawn uniformly in ``[crop_size[i], 1]``
    - "absolute": ``crop_size`` pixels (clamped to the image)
    - "absolute_range": ``h`` in ``[crop_size[0], min(H, crop_size[1])]``, same for ``w``
    """

    def __init__(self, crop_type: str, crop_size):
        super().__init__()
        if crop_type not in ("relative_range", "relative", "absolute", "absolute_range"):
            raise ValueError(f"RandomCrop: unknown crop_type {crop_type!r}")
        self.crop_type = crop_type
        self.crop_size = tuple(crop_size)

    def get_transform(self, image):
        h, w = image.shape[:2]
        croph, cropw = self.get_crop_size((h, w))
        if not (h >= croph and w >= cropw):
            raise ValueError(f"RandomCrop: shape computed {(croph, cropw)} is larger than the image {(h, w)}")
        h0 = int(np.random.randint(h - croph + 1))
        w0 = int(np.random.randint(w - cropw + 1))
        return CropTransform(w0, h0, cropw, croph, orig_w=w, orig_h=h)

    def get_crop_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        h, w = image_size
        if self.crop_type == "relative":
            ch, cw = self.crop_size
            return int(h * ch + 0.5), int(w * cw + 0.5)
        if self.crop_type == "relative_range":
            crop_size = np.asarray(self.crop_size, dtype=np.float32)
            ch, cw = crop_size + np.random.rand(2) * (1 - crop_size)
            return int(h * ch + 0.5), int(w * cw + 0.5)
        if self.crop_type == "absolute":
            return min(self.crop_size[0], h), min(self.crop_size[1], w)
        # absolute_range
        if self.crop_size[0] > self.crop_size[1]:
            raise ValueError(f"RandomCrop absolute_range: min {self.crop_size[0]} > max {self.crop_size[1]}")
        ch = np.random.randint(min(h, self.crop_size[0]), min(h, self.crop_size[1]) + 1)
        cw = np.random.randint(min(w, self.crop_size[0]), min(w, self.crop_size[1]) + 1)
        return int(ch), int(cw)


class RandomBrightness(Augmentation):
    """Multiply pixel values by ``w`` ~ U[intensity_min, intensity_max] (blend with black)."""

    def __init__(self, intensity_min: float, intensity_max: float):
        super().__init__()
        self._init(locals())

    def get_transform(self, image):
        w = np.random.uniform(self.intensity_min, self.intensity_max)
        return BlendTransform(src_image=0, src_weight=1 - w, dst_weight=w)


class RandomContrast(Augmentation):
    """Blend with the image's mean value with weight ``w`` ~ U[intensity_min, intensity_max]."""

    def __init__(self, intensity_min: float, intensity_max: float):
        super().__init__()
        self._init(locals())

    def get_transform(self, image):
        w = np.random.uniform(self.intensity_min, self.intensity_max)
        return BlendTransform(src_image=float(image.mean()), src_weight=1 - w, dst_weight=w)


class RandomSaturation(Augmentation):
    """Blend with the grayscale image with weight ``w`` ~ U[intensity_min, intensity_max].

    The grayscale weights (0.299, 0.587, 0.114) are for RGB; pass ``image_format="BGR"`` for BGR input.
    """

    def __init__(self, intensity_min: float, intensity_max: float, image_format: str = "RGB"):
        super().__init__()
        self._init(locals())

    def get_transform(self, image):
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"RandomSaturation needs an HxWx3 image, got shape {image.shape}")
        w = np.random.uniform(self.intensity_min, self.intensity_max)
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        if self.image_format == "BGR":
            weights = weights[::-1]
        grayscale = image.astype(np.float32).dot(weights)[:, :, np.newaxis]
        return BlendTransform(src_image=grayscale, src_weight=1 - w, dst_weight=w)
