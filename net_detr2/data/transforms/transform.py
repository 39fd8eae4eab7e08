"""Deterministic transforms of an image and of the coordinates that live on it.

A `Transform` holds *already sampled* parameters (a flip, a resize to 512x384, a crop at (10, 20)...):
applying it twice gives the same result, which is what lets the image and its boxes be transformed
consistently. Randomness lives in `Augmentation` (see ``augmentation.py``), which samples a Transform.

Conventions (detectron2's): images are numpy arrays HxW or HxWxC, uint8 or float32; coordinates are
float ``(x, y)`` in pixels with pixel ``i`` covering ``[i, i+1)``, so an image of width W spans
``[0, W]``; boxes are ``Nx4`` ``(x1, y1, x2, y2)`` in that frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

__all__ = [
    "Transform",
    "TransformList",
    "NoOpTransform",
    "HFlipTransform",
    "VFlipTransform",
    "ResizeTransform",
    "CropTransform",
    "PadTransform",
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


class Transform:
    """Base class: override `apply_image` and `apply_coords`; boxes follow from the coordinates."""

    def _set_attributes(self, params: dict) -> None:
        for k, v in params.items():
            if k != "self" and not k.startswith("_"):
                setattr(self, k, v)

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        """coords: float array Nx2 of (x, y). Returns the transformed Nx2 array."""
        raise NotImplementedError

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        """Label maps: same geometry as the image (subclasses use nearest interpolation)."""
        return self.apply_image(segmentation)

    def apply_box(self, box: np.ndarray) -> np.ndarray:
        """box: Nx4 (x1, y1, x2, y2). Transforms the 4 corners and returns their axis-aligned bounds, Nx4.

        Exact for flips, resizes, crops and pads, which map rectangles to rectangles.
        """
        box = np.asarray(box, dtype=np.float32).reshape(-1, 4)
        idxs = np.array([(0, 1), (2, 1), (0, 3), (2, 3)]).flatten()
        corners = box[:, idxs].reshape(-1, 2)
        coords = self.apply_coords(corners).reshape((-1, 4, 2))
        minxy = coords.min(axis=1)
        maxxy = coords.max(axis=1)
        return np.concatenate((minxy, maxxy), axis=1).astype(np.float32)

    def inverse(self) -> Transform:
        raise NotImplementedError(f"{type(self).__name__} has no inverse")

    def __repr__(self) -> str:
        attrs = ", ".join(
            f"{k}={v!r}" for k, v in self.__dict__.items() if not isinstance(v, np.ndarray) or v.size < 10
        )
        return f"{type(self).__name__}({attrs})"


class TransformList(Transform):
    """A sequence of transforms applied in order."""

    def __init__(self, transforms: Sequence[Transform]):
        tfms = []
        for t in transforms:
            if isinstance(t, TransformList):
                tfms.extend(t.transforms)
            elif not isinstance(t, NoOpTransform):
                if not isinstance(t, Transform):
                    raise TypeError(f"TransformList: expected Transform, got {type(t)}")
                tfms.append(t)
        self.transforms = tfms

    def _apply(self, method: str, x):
        for t in self.transforms:
            x = getattr(t, method)(x)
        return x

    def apply_image(self, img):
        return self._apply("apply_image", img)

    def apply_coords(self, coords):
        return self._apply("apply_coords", coords)

    def apply_box(self, box):
        # each step may not map rectangles to rectangles exactly, so go step by step (like detectron2)
        return self._apply("apply_box", box)

    def apply_segmentation(self, segmentation):
        return self._apply("apply_segmentation", segmentation)

    def inverse(self) -> TransformList:
        return TransformList([t.inverse() for t in reversed(self.transforms)])

    def __add__(self, other) -> TransformList:
        other = other.transforms if isinstance(other, TransformList) else [other]
        return TransformList(self.transforms + list(other))

    def __len__(self) -> int:
        return len(self.transforms)

    def __getitem__(self, idx) -> Transform:
        return self.transforms[idx]

    def __iter__(self):
        return iter(self.transforms)

    def __repr__(self) -> str:
        return f"TransformList[{', '.join(repr(t) for t in self.transforms)}]"


class NoOpTransform(Transform):
    def apply_image(self, img):
        return img

    def apply_coords(self, coords):
        return coords

    def apply_box(self, box):
        return np.asarray(box, dtype=np.float32).reshape(-1, 4)

    def inverse(self):
        return self


class HFlipTransform(Transform):
    """Mirror left-right an image of the given width: x -> width - x."""

    def __init__(self, width: int):
        self.width = width

    def apply_image(self, img):
        return np.ascontiguousarray(img[:, ::-1])

    def apply_coords(self, coords):
        coords = np.array(coords, dtype=np.float32, copy=True)
        coords[:, 0] = self.width - coords[:, 0]
        return coords

    def inverse(self):
        return self


class VFlipTransform(Transform):
    """Mirror top-bottom an image of the given height: y -> height - y."""

    def __init__(self, height: int):
        self.height = height

    def apply_image(self, img):
        return np.ascontiguousarray(img[::-1])

    def apply_coords(self, coords):
        coords = np.array(coords, dtype=np.float32, copy=True)
        coords[:, 1] = self.height - coords[:, 1]
        return coords

    def inverse(self):
        return self


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


class CropTransform(Transform):
    """Keep the window ``[x0, x0+w) x [y0, y0+h)``; coordinates shift by ``(-x0, -y0)``.

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
        self._set_attributes(
            dict(
                x0=int(x0),
                y0=int(y0),
                w=int(w),
                h=int(h),
                orig_w=orig_w,
                orig_h=orig_h,
                keep_center_only=keep_center_only,
            )
        )

    def apply_image(self, img):
        return img[self.y0 : self.y0 + self.h, self.x0 : self.x0 + self.w]

    def apply_coords(self, coords):
        coords = np.array(coords, dtype=np.float32, copy=True)
        coords[:, 0] -= self.x0
        coords[:, 1] -= self.y0
        return coords

    def apply_box(self, box):
        box = np.asarray(box, dtype=np.float32).reshape(-1, 4)
        out = box - np.array([self.x0, self.y0, self.x0, self.y0], dtype=np.float32)
        if self.keep_center_only and len(out):
            cx = (out[:, 0] + out[:, 2]) / 2
            cy = (out[:, 1] + out[:, 3]) / 2
            outside = (cx < 0) | (cy < 0) | (cx >= self.w) | (cy >= self.h)
            out[outside] = 0.0
        return out

    def inverse(self):
        if self.orig_w is None or self.orig_h is None:
            raise NotImplementedError("CropTransform.inverse needs orig_w and orig_h")
        return PadTransform(self.x0, self.y0, self.orig_w - self.x0 - self.w, self.orig_h - self.y0 - self.h, 0)


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


class BlendTransform(Transform):
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

    def apply_coords(self, coords):
        return coords

    def apply_box(self, box):
        return np.asarray(box, dtype=np.float32).reshape(-1, 4)

    def apply_segmentation(self, segmentation):
        return segmentation

    def inverse(self):
        return NoOpTransform()


class ColorTransform(Transform):
    """Any pixel-wise function ``op(img) -> img`` that leaves the geometry alone."""

    def __init__(self, op: Callable[[np.ndarray], np.ndarray]):
        if not callable(op):
            raise TypeError("ColorTransform: op must be callable")
        self.op = op

    def apply_image(self, img):
        return self.op(img)

    def apply_coords(self, coords):
        return coords

    def apply_box(self, box):
        return np.asarray(box, dtype=np.float32).reshape(-1, 4)

    def apply_segmentation(self, segmentation):
        return segmentation

    def inverse(self):
        return NoOpTransform()
