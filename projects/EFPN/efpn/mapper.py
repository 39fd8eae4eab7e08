"""`TeacherImageMapper`: the ordinary training input plus the picture at k times the training scale.

Cross-resolution distillation (Sec. III-C) compares the student's P2'/P3' on the 1x image with the
teacher's P2/P3 on the image at 2x the training scale. The 2x image is made from the *original* picture:
the same sampled augmentation as the 1x image, with every resize aiming at k times its size (and every
later flip, crop or pad scaled by k), so the teacher sees the detail the original has beyond the 1x
scale (TT100K's 2048 px photos trained at 1400, the Aquarium photos trained at ~3/8). ``"image"`` is the
ordinary `DatasetMapper` output, exactly what the detector sees at test time.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from net_detr2.data import transforms as T
from net_detr2.data.dataset_mapper import DatasetMapper, to_chw_tensor

__all__ = ["TeacherImageMapper", "scale_transforms"]


def _flatten(transforms: Iterable[T.Transform]) -> list[T.Transform]:
    out = []
    for t in transforms:
        out.extend(_flatten(t.transforms) if isinstance(t, T.TransformList) else [t])
    return out


def _resized_src(src, shape: tuple[int, int]):
    """A blend's per-pixel ``src_image`` (e.g. the grayscale of a saturation change) in a frame of ``shape``."""
    if np.ndim(src) < 2 or tuple(np.shape(src)[:2]) == shape:
        return src
    src = np.asarray(src, dtype=np.float32)
    out = cv2.resize(src, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return out.reshape(shape + src.shape[2:])


def scale_transforms(transforms: T.Transform, k: int, original_size: tuple[int, int]) -> T.TransformList:
    """The transforms that take the original picture to k times the size of what ``transforms`` make of it.

    Walks ``transforms`` (as applied to an original of ``original_size`` = (h, w)) keeping the factor f
    between the k-times frame and the 1x frame (1 until the first resize): a resize (h, w) -> (h', w')
    becomes (f*h, f*w) -> (k*h', k*w') (f is k from then on), flips, crops and pads are scaled by f,
    photometric transforms are kept (a blend's per-pixel source is resized to the frame). Without any
    resize, a final resize by k is appended. Other transform types raise TypeError: their k-times form is
    not known here.
    """
    if k < 1 or int(k) != k:
        raise ValueError(f"scale_transforms: k must be an integer >= 1, got {k}")
    k = int(k)
    f = 1
    h, w = original_size
    out: list[T.Transform] = []
    for t in _flatten([transforms]):
        if isinstance(t, T.NoOpTransform):
            continue
        if isinstance(t, T.ResizeTransform):
            if (t.h, t.w) != (h, w):
                raise ValueError(f"scale_transforms: {t} expects ({t.h}, {t.w}) but the image is ({h}, {w}) here")
            out.append(T.ResizeTransform(f * t.h, f * t.w, k * t.new_h, k * t.new_w, t.interp))
            f, (h, w) = k, (t.new_h, t.new_w)
        elif isinstance(t, T.HFlipTransform):
            out.append(T.HFlipTransform(f * t.width))
        elif isinstance(t, T.VFlipTransform):
            out.append(T.VFlipTransform(f * t.height))
        elif isinstance(t, T.CropTransform):
            out.append(
                T.CropTransform(
                    f * t.x0,
                    f * t.y0,
                    f * t.w,
                    f * t.h,
                    None if t.orig_w is None else f * t.orig_w,
                    None if t.orig_h is None else f * t.orig_h,
                    keep_center_only=getattr(t, "keep_center_only", False),
                )
            )
            h, w = t.h, t.w
        elif isinstance(t, T.PadTransform):
            out.append(T.PadTransform(f * t.x0, f * t.y0, f * t.x1, f * t.y1, t.pad_value))
            h, w = h + t.y0 + t.y1, w + t.x0 + t.x1
        elif isinstance(t, T.BlendTransform):
            out.append(T.BlendTransform(_resized_src(t.src_image, (f * h, f * w)), t.src_weight, t.dst_weight))
        elif isinstance(t, T.PhotometricTransform):
            out.append(t)
        else:
            raise TypeError(
                f"scale_transforms: no k-times form known for {type(t).__name__} ({t}); "
                "TeacherImageMapper supports resizes, flips, crops, pads and photometric transforms"
            )
    if f == 1 and k > 1:  # no resize at all: the k-times image can only be the last frame enlarged
        out.append(T.ResizeTransform(h, w, k * h, k * w))
    return T.TransformList(out)


class TeacherImageMapper(DatasetMapper):
    """`DatasetMapper` + ``"image_2x"``: the original picture taken to ``teacher_scale`` times the size of
    ``"image"`` by the same sampled augmentation (see `scale_transforms`).

    ``"image"`` and the boxes are exactly the ordinary mapper's; ``"image_2x"`` is exactly
    ``teacher_scale`` times ``"image"``'s height and width.

    Args:
        teacher_scale: integer k >= 2 (the paper's 2).
        teacher_image_key: key of the k-times image (``EFPNRCNN.teacher_image_key``).
        is_train, augmentations, image_format, ...: as for `DatasetMapper`.
    """

    def __init__(self, *args, teacher_scale: int = 2, teacher_image_key: str = "image_2x", **kwargs):
        if teacher_scale < 2 or int(teacher_scale) != teacher_scale:
            raise ValueError(f"TeacherImageMapper: teacher_scale must be an integer >= 2, got {teacher_scale}")
        super().__init__(*args, **kwargs)
        self.teacher_scale = int(teacher_scale)
        self.teacher_image_key = teacher_image_key

    def add_extra_inputs(self, dataset_dict: dict, original: np.ndarray, transforms: T.Transform) -> None:
        k = self.teacher_scale
        big = scale_transforms(transforms, k, original.shape[:2]).apply_image(original)
        expected = tuple(k * s for s in dataset_dict["image"].shape[-2:])
        if big.shape[:2] != expected:  # a transform whose k-times form changes the size differently
            raise ValueError(
                f"TeacherImageMapper: {dataset_dict.get('file_name')}: the {k}x image is {big.shape[:2]}, "
                f"expected {expected} from the transforms {transforms}"
            )
        dataset_dict[self.teacher_image_key] = to_chw_tensor(big)
