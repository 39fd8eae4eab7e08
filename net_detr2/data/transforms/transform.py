"""Deterministic transforms of an image and of the coordinates that live on it.

A `Transform` holds *already sampled* parameters (a flip, a resize to 512x384, a crop at (10, 20)...):
applying it twice gives the same result, which is what lets the image and its boxes be transformed
consistently. Randomness lives in `Augmentation` (see ``augmentation.py``), which samples a Transform.

`Transform`, `TransformList`, `NoOpTransform` and the flips are fvcore's (detectron2's own choice).
Ours, on fvcore's `Transform`, are those where fvcore differs or has nothing (tests/test_data_transforms.py
shows each difference): `ResizeTransform` (OpenCV, like the rest of our pipeline; fvcore's ScaleTransform
interpolates with PIL), `CropTransform` (fvcore's plus SSD's ``keep_center_only``), `PadTransform`
(a fill value per channel, which SSD's expand needs), `BlendTransform` (rounds to the nearest uint8 where
fvcore's truncates) and `ColorTransform`.

Conventions (detectron2's): images are numpy arrays HxW or HxWxC, uint8 or float32; coordinates are
float ``(x, y)`` in pixels with pixel ``i`` covering ``[i, i+1)``, so an image of width W spans
``[0, W]``; boxes are ``Nx4`` ``(x1, y1, x2, y2)`` in that frame.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from fvcore.transforms.transform import CropTransform as _FvcoreCropTransform
from fvcore.transforms.transform import HFlipTransform, NoOpTransform, Transform, TransformList, VFlipTransform

__all__ = [
    "Transform",
    "TransformList",
    "NoOpTransform",
    "HFlipTransform",
    "VFlipTransform",
    "ResizeTransform",
    "CropTransform",
    "PadTransform",
    "PhotometricTransform",
    "BlendTransform",
    "ColorTransform",
]

_CV2_INTERP = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "bicubic": cv2.INTER_CUBIC,
}


def _interp_flag(interp) -> int:
    """Accept cv2 flags, names, or PIL's integer constants (NEAREST=0, BILINEAR=2, BICUBIC=3)."""
    if isinstance(interp, str):
        if interp.lower() not in _CV2_INTERP:
            raise ValueError(f"unknown interpolation {interp!r}; choose from {sorted(_CV2_INTERP)}")
        return _CV2_INTERP[interp.lower()]
    # PIL constants: 0 NEAREST, 2 BILINEAR, 3 BICUBIC, 1 LANCZOS
    return {0: cv2.INTER_NEAREST, 1: cv2.INTER_LANCZOS4, 2: cv2.INTER_LINEAR, 3: cv2.INTER_CUBIC}.get(
        int(interp), cv2.INTER_LINEAR
    )


class ResizeTransform(Transform):
    """Resize an (h, w) image to (new_h, new_w); coordinates scale by new/old."""

    def __init__(self, h: int, w: int, new_h: int, new_w: int, interp="bilinear"):
        self._set_attributes(dict(h=int(h), w=int(w), new_h=int(new_h), new_w=int(new_w), interp=interp))

    def apply_image(self, img, interp=None):
        if img.shape[:2] != (self.h, self.w):
            raise ValueError(f"ResizeTransform expects an image of size {(self.h, self.w)}, got {img.shape[:2]}")
        if (self.new_h, self.new_w) == (self.h, self.w):
            return img
        flag = _interp_flag(self.interp if interp is None else interp)
        out = cv2.resize(img, (self.new_w, self.new_h), interpolation=flag)
        if img.ndim == 3 and out.ndim == 2:  # cv2 drops a trailing channel of size 1
            out = out[:, :, None]
        return out

    def apply_coords(self, coords):
        coords = np.array(coords, dtype=np.float32, copy=True)
        coords[:, 0] = coords[:, 0] * (self.new_w * 1.0 / self.w)
        coords[:, 1] = coords[:, 1] * (self.new_h * 1.0 / self.h)
        return coords

    def apply_segmentation(self, segmentation):
        return self.apply_image(segmentation, interp="nearest")

    def inverse(self):
        return ResizeTransform(self.new_h, self.new_w, self.h, self.w, self.interp)


class CropTransform(_FvcoreCropTransform):
    """Keep the window ``[x0, x0+w) x [y0, y0+h)``; coordinates shift by ``(-x0, -y0)`` (fvcore's crop).

    ``keep_center_only=True`` (SSD's rule for its random crop): a box whose *centre* lies outside the
    window is collapsed to a zero-size box, so the usual empty-box filter drops it; boxes whose centre is
    inside are kept (and later clipped to the window).
    """

    def __init__(
        self,
        x0: int,
        y0: int,
        w: int,
        h: int,
        orig_w: int | None = None,
        orig_h: int | None = None,
        keep_center_only: bool = False,
    ):
        super().__init__(int(x0), int(y0), int(w), int(h), orig_w, orig_h)
        self.keep_center_only = keep_center_only

    def apply_box(self, box: np.ndarray) -> np.ndarray:
        out = super().apply_box(box)
        if self.keep_center_only and len(out):
            cx = (out[:, 0] + out[:, 2]) / 2
            cy = (out[:, 1] + out[:, 3]) / 2
            outside = (cx < 0) | (cy < 0) | (cx >= self.w) | (cy >= self.h)
            out[outside] = 0.0
        return out


class PadTransform(Transform):
    """Pad ``x0``/``y0`` pixels left/top and ``x1``/``y1`` right/bottom with ``pad_value``.

    ``pad_value`` is a scalar or one value per channel (SSD's "expand" fills with the pixel mean).
    """

    def __init__(self, x0: int, y0: int, x1: int, y1: int, pad_value=0.0):
        self._set_attributes(dict(x0=int(x0), y0=int(y0), x1=int(x1), y1=int(y1), pad_value=pad_value))

    def apply_image(self, img):
        h, w = img.shape[:2]
        if img.dtype == np.uint8 and (img.ndim == 2 or img.shape[2] <= 4):
            # cv2's border fill is several times faster than numpy for the large canvases of SSD's expand
            fill = np.broadcast_to(
                np.asarray(self.pad_value, dtype=np.float64).reshape(-1), (img.shape[2] if img.ndim == 3 else 1,)
            )
            value = [float(np.clip(np.round(v), 0, 255)) for v in fill]
            out = cv2.copyMakeBorder(img, self.y0, self.y1, self.x0, self.x1, cv2.BORDER_CONSTANT, value=value)
            return out[:, :, None] if img.ndim == 3 and out.ndim == 2 else out
        out_shape = (h + self.y0 + self.y1, w + self.x0 + self.x1) + img.shape[2:]
        out = np.empty(out_shape, dtype=img.dtype)
        fill = np.asarray(self.pad_value, dtype=np.float64)
        if img.ndim == 3 and fill.size not in (1, img.shape[2]):
            raise ValueError(f"PadTransform: pad_value {self.pad_value} does not match {img.shape[2]} channels")
        if img.ndim == 2:
            fill = fill.reshape(-1)[:1]
        if np.issubdtype(img.dtype, np.integer):
            fill = np.clip(np.round(fill), np.iinfo(img.dtype).min, np.iinfo(img.dtype).max)
        out[...] = fill.astype(img.dtype) if img.ndim == 3 else fill.astype(img.dtype)[0]
        out[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = img
        return out

    def apply_segmentation(self, segmentation):
        h, w = segmentation.shape[:2]
        out = np.zeros((h + self.y0 + self.y1, w + self.x0 + self.x1) + segmentation.shape[2:], segmentation.dtype)
        out[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = segmentation
        return out

    def apply_coords(self, coords):
        coords = np.array(coords, dtype=np.float32, copy=True)
        coords[:, 0] += self.x0
        coords[:, 1] += self.y0
        return coords

    def inverse(self):
        raise NotImplementedError("PadTransform.inverse needs the padded size; use CropTransform explicitly")


class PhotometricTransform(Transform):
    """Base of the transforms that change pixel values only: coordinates and label maps pass through and the
    (geometric) inverse is a no-op."""

    def apply_coords(self, coords):
        return coords

    def apply_segmentation(self, segmentation):
        return segmentation

    def inverse(self):
        return NoOpTransform()


class BlendTransform(PhotometricTransform):
    """Pixel-wise ``src_weight * src_image + dst_weight * img`` (brightness/contrast/saturation).

    Geometry is unchanged. uint8 images are computed in float and clipped back to [0, 255].
    """

    def __init__(self, src_image, src_weight: float, dst_weight: float):
        self._set_attributes(dict(src_image=src_image, src_weight=float(src_weight), dst_weight=float(dst_weight)))

    def apply_image(self, img):
        if img.dtype == np.uint8:
            out = self.src_weight * np.asarray(self.src_image, dtype=np.float32) + self.dst_weight * img.astype(
                np.float32
            )
            return np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return self.src_weight * self.src_image + self.dst_weight * img


class ColorTransform(PhotometricTransform):
    """Any pixel-wise function ``op(img) -> img`` that leaves the geometry alone."""

    def __init__(self, op: Callable[[np.ndarray], np.ndarray]):
        if not callable(op):
            raise TypeError("ColorTransform: op must be callable")
        self.op = op

    def apply_image(self, img):
        return self.op(img)
