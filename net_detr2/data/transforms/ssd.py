"""The SSD training pipeline (Liu et al., 2016) as augmentations usable in `DatasetMapper`:
photometric distortion, zoom-out ("expand") with mean fill, min-IoU random crop, flip, fixed resize.

Each augmentation samples its parameters in ``get_transform`` and returns a deterministic `Transform`,
so boxes follow the pixels exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .augmentation import Augmentation
from .augmentation_impl import RandomFlip, Resize
from .transform import CropTransform, NoOpTransform, PadTransform, PhotometricTransform

__all__ = [
    "PhotometricDistortTransform",
    "PhotometricDistort",
    "Expand",
    "MinIoURandomCrop",
    "ssd_train_augmentations",
    "ssd_test_augmentations",
]


class PhotometricDistortTransform(PhotometricTransform):
    """SSD's colour distortion with fixed parameters (``None`` = that step is skipped).

    Order: brightness (+delta), contrast (xfactor) if ``contrast_first``, saturation (xfactor on S) and hue
    (+degrees on H) in HSV space, contrast if not ``contrast_first``, then a channel permutation.
    Works in float32 and clips to [0, 255] between steps; returns the input dtype.
    """

    def __init__(
        self,
        brightness=None,
        contrast=None,
        contrast_first=True,
        saturation=None,
        hue=None,
        channel_perm=None,
        image_format="BGR",
    ):
        self._set_attributes(
            dict(
                brightness=brightness,
                contrast=contrast,
                contrast_first=contrast_first,
                saturation=saturation,
                hue=hue,
                channel_perm=channel_perm,
                image_format=image_format,
            )
        )

    def apply_image(self, img):
        dtype = img.dtype
        x = img.astype(np.float32)  # a copy: the steps below work in place
        if self.brightness is not None:
            x += np.float32(self.brightness)
            np.clip(x, 0, 255, out=x)
        if self.contrast is not None and self.contrast_first:
            x *= np.float32(self.contrast)
            np.clip(x, 0, 255, out=x)
        color = x.ndim == 3 and x.shape[2] == 3 and self.image_format in ("BGR", "RGB")
        if color and (self.saturation is not None or self.hue is not None):
            to_hsv, from_hsv = (
                (cv2.COLOR_BGR2HSV, cv2.COLOR_HSV2BGR)
                if self.image_format == "BGR"
                else (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB)
            )
            # float input in [0, 1]: H in degrees [0, 360), S and V in [0, 1]
            x *= np.float32(1.0 / 255.0)
            hsv = cv2.cvtColor(x, to_hsv)
            if self.saturation is not None:
                s = hsv[:, :, 1]
                s *= np.float32(self.saturation)
                np.clip(s, 0, 1, out=s)
            if self.hue is not None:
                hch = hsv[:, :, 0]
                hch += np.float32(self.hue)
                np.mod(hch, 360.0, out=hch)
            x = cv2.cvtColor(hsv, from_hsv)
            x *= np.float32(255.0)
            np.clip(x, 0, 255, out=x)
        if self.contrast is not None and not self.contrast_first:
            x *= np.float32(self.contrast)
            np.clip(x, 0, 255, out=x)
        if self.channel_perm is not None and x.ndim == 3:
            x = x[:, :, list(self.channel_perm)]
        if dtype == np.uint8:
            x += np.float32(0.5)
            np.clip(x, 0, 255, out=x)
            return np.ascontiguousarray(x.astype(np.uint8))
        return np.ascontiguousarray(x.astype(dtype))


class PhotometricDistort(Augmentation):
    """Sample SSD's photometric distortion: each step happens with probability 0.5.

    Args:
        brightness_delta: added value drawn from U[-delta, delta] (SSD: 32).
        contrast_range, saturation_range: multiplicative factors (SSD: 0.5..1.5).
        hue_delta: degrees added to the hue, U[-delta, delta] (SSD: 18).
        channel_swap_prob: probability of a random channel permutation (0 in the original Caffe SSD).
        image_format: "BGR" or "RGB" (for the HSV conversion).
    """

    def __init__(
        self,
        brightness_delta: float = 32,
        contrast_range=(0.5, 1.5),
        saturation_range=(0.5, 1.5),
        hue_delta: float = 18,
        channel_swap_prob: float = 0.0,
        image_format: str = "BGR",
    ):
        super().__init__()
        self._init(locals())

    def get_transform(self, image):
        r = np.random.uniform(size=6)
        brightness = float(np.random.uniform(-self.brightness_delta, self.brightness_delta)) if r[0] < 0.5 else None
        contrast_first = bool(r[1] < 0.5)
        contrast = float(np.random.uniform(*self.contrast_range)) if r[2] < 0.5 else None
        saturation = float(np.random.uniform(*self.saturation_range)) if r[3] < 0.5 else None
        hue = float(np.random.uniform(-self.hue_delta, self.hue_delta)) if r[4] < 0.5 else None
        perm = tuple(int(i) for i in np.random.permutation(3)) if r[5] < self.channel_swap_prob else None
        return PhotometricDistortTransform(
            brightness, contrast, contrast_first, saturation, hue, perm, self.image_format
        )


class Expand(Augmentation):
    """Zoom out: with probability ``prob`` place the image at a random spot of a canvas ``r`` times larger
    (``r`` ~ U[ratio_range]) filled with ``fill`` (the pixel mean in the image's channel order)."""

    def __init__(self, ratio_range=(1.0, 4.0), prob: float = 0.5, fill: Sequence[float] = (103.53, 116.28, 123.675)):
        super().__init__()
        self._init(locals())

    def get_transform(self, image):
        if self._rand_range() >= self.prob:
            return NoOpTransform()
        h, w = image.shape[:2]
        ratio = float(np.random.uniform(*self.ratio_range))
        new_h, new_w = int(h * ratio), int(w * ratio)
        left = int(np.random.randint(0, new_w - w + 1))
        top = int(np.random.randint(0, new_h - h + 1))
        return PadTransform(left, top, new_w - w - left, new_h - h - top, tuple(self.fill))


class MinIoURandomCrop(Augmentation):
    """SSD's patch sampler.

    Picks one option uniformly from ``[None] + min_ious`` (``None`` = keep the whole image when
    ``include_original``), then tries up to ``max_trials`` windows with sides in
    ``[min_crop_size, 1]`` of the image's and ``h/w`` in ``aspect_ratio_range``. A window is accepted when
    at least one box centre lies inside it and its IoU with the boxes satisfies ``min_iou``:
    ``constraint="any"`` (the original Caffe SSD: some box reaches it) or ``"all"`` (every box does, as in
    some re-implementations). Boxes whose centre is outside the accepted window are dropped, the others
    clipped (see `CropTransform(keep_center_only=True)`). No window found, or no boxes: no crop.
    """

    input_args = ("image", "boxes")

    def __init__(
        self,
        min_ious=(0.1, 0.3, 0.5, 0.7, 0.9),
        min_crop_size: float = 0.3,
        aspect_ratio_range=(0.5, 2.0),
        max_trials: int = 50,
        include_original: bool = True,
        constraint: str = "any",
    ):
        super().__init__()
        if constraint not in ("any", "all"):
            raise ValueError(f"MinIoURandomCrop: constraint must be 'any' or 'all', got {constraint!r}")
        self._init(locals())
        self.options = ([None] if include_original else []) + [float(v) for v in min_ious]

    def get_transform(self, image, boxes):
        h, w = image.shape[:2]
        if boxes is None or len(boxes) == 0:
            return NoOpTransform()
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        min_iou = self.options[int(np.random.randint(len(self.options)))]
        if min_iou is None:
            return NoOpTransform()
        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        # all trials at once; the first acceptable one wins (same rule as trying them in a loop)
        n = self.max_trials
        cw = np.maximum(np.random.uniform(self.min_crop_size * w, w, n).astype(np.int64), 1)
        ch = np.maximum(np.random.uniform(self.min_crop_size * h, h, n).astype(np.int64), 1)
        x0 = (np.random.uniform(0, 1, n) * (w - cw)).astype(np.int64)
        y0 = (np.random.uniform(0, 1, n) * (h - ch)).astype(np.int64)
        windows = np.stack([x0, y0, x0 + cw, y0 + ch], axis=1).astype(np.float32)  # (n, 4)
        aspect_ok = (ch / cw >= self.aspect_ratio_range[0]) & (ch / cw <= self.aspect_ratio_range[1])
        lt = np.maximum(windows[:, None, :2], boxes[None, :, :2])
        rb = np.minimum(windows[:, None, 2:], boxes[None, :, 2:])
        inter = np.clip(rb - lt, 0, None).prod(axis=2)  # (n, N)
        area_w = (cw * ch).astype(np.float32)[:, None]
        area_b = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None, :]
        ious = inter / np.maximum(area_w + area_b - inter, 1e-12)
        iou_ok = ious.max(axis=1) >= min_iou if self.constraint == "any" else ious.min(axis=1) >= min_iou
        inside = (
            (centers[None, :, 0] >= windows[:, None, 0])
            & (centers[None, :, 0] < windows[:, None, 2])
            & (centers[None, :, 1] >= windows[:, None, 1])
            & (centers[None, :, 1] < windows[:, None, 3])
        ).any(axis=1)
        ok = np.nonzero(aspect_ok & iou_ok & inside)[0]
        if len(ok):
            k = ok[0]
            return CropTransform(
                int(x0[k]), int(y0[k]), int(cw[k]), int(ch[k]), orig_w=w, orig_h=h, keep_center_only=True
            )
        return NoOpTransform()


def ssd_train_augmentations(
    size: int = 300, pixel_mean: Sequence[float] = (103.53, 116.28, 123.675), image_format: str = "BGR"
) -> list:
    """SSD's training augmentations for a ``size`` x ``size`` input; ``pixel_mean`` in the image's
    channel order (fills the expanded canvas)."""
    return [
        PhotometricDistort(image_format=image_format),
        Expand(ratio_range=(1.0, 4.0), prob=0.5, fill=tuple(pixel_mean)),
        MinIoURandomCrop(),
        Resize((size, size)),
        RandomFlip(prob=0.5, horizontal=True),
    ]


def ssd_test_augmentations(size: int = 300) -> list:
    """SSD's test-time preprocessing: a fixed resize to ``size`` x ``size``."""
    return [Resize((size, size))]
