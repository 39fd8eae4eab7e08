"""`TeacherImageMapper`: the teacher's 2x image comes from the original picture, the student's is the ordinary one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import net_detr2.data.transforms as T
from net_detr2.data import DatasetMapper
from net_detr2.structures import BoxMode
from net_detr2_projects.EFPN.efpn import TeacherImageMapper, scale_transforms


def _record(tmp_path, image, boxes):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), image)
    h, w = image.shape[:2]
    annos = [{"bbox": b, "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0} for b in boxes]
    return {"file_name": str(path), "height": h, "width": w, "image_id": 1, "annotations": annos}


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


def _smooth_image(h, w):
    """Slowly varying colours: resampling commutes with downscaling up to rounding."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    chans = [127 + 100 * np.sin(x / 23 + c) * np.cos(y / 31 - c) for c in range(3)]
    return np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)


def test_teacher_image_is_the_original_at_twice_the_scale(tmp_path):
    # a detailed original (3x the 1x training scale): noise the 1x image cannot hold
    original = np.random.RandomState(0).randint(0, 256, (135, 177, 3)).astype(np.uint8)
    record = _record(tmp_path, original, [[10, 12, 60, 70]])
    augs = [T.ResizeShortestEdge((45, 50), max_size=1000, sample_style="choice"), T.RandomFlip(prob=1.0)]
    np.random.seed(3)
    out = TeacherImageMapper(True, augmentations=augs)(record)
    np.random.seed(3)
    plain = DatasetMapper(True, augmentations=augs)(record)

    # the student's input and boxes are exactly the ordinary mapper's
    assert torch.equal(out["image"], plain["image"])
    assert torch.equal(out["instances"].gt_boxes.tensor, plain["instances"].gt_boxes.tensor)
    h, w = out["image"].shape[-2:]
    assert out["image_2x"].shape == (3, 2 * h, 2 * w)

    # the teacher's is the original resized to 2x the sampled scale, then flipped
    direct = cv2.resize(original, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)[:, ::-1]
    teacher = _hwc(out["image_2x"]).astype(np.int16)
    assert np.abs(teacher - direct).max() <= 1
    # ... and not the 1x image enlarged: that one lost the original's detail
    upsampled = cv2.resize(_hwc(out["image"]), (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR).astype(np.int16)
    assert np.abs(teacher - upsampled).mean() > 10 * max(np.abs(teacher - direct).mean(), 0.1)


def test_scale_transforms_follow_every_geometric_step():
    """Pad -> resize -> crop -> flips -> saturation: the 2x result, 2x2-averaged, is the 1x result."""
    original = _smooth_image(90, 120)
    np.random.seed(0)
    saturation = T.RandomSaturation(0.5, 0.5)
    steps = [
        T.PadTransform(4, 2, 6, 8, 50),
        T.ResizeTransform(100, 130, 60, 78),
        T.CropTransform(5, 7, 64, 48, orig_w=78, orig_h=60),
        T.HFlipTransform(64),
        T.VFlipTransform(48),
    ]
    small = T.TransformList(steps).apply_image(original)
    blend = saturation.get_transform(small)  # its per-pixel source is the 1x frame's grayscale
    transforms = T.TransformList(steps + [T.NoOpTransform(), blend])
    small = blend.apply_image(small)
    big = scale_transforms(transforms, 2, original.shape[:2]).apply_image(original)
    assert big.shape == (96, 128, 3)
    pooled = big.reshape(48, 2, 64, 2, 3).astype(np.float32).mean(axis=(1, 3))
    assert np.abs(pooled - small).max() <= 2
    # a crop before any resize is taken at full resolution, then the resize doubles its target
    crop_first = T.TransformList([T.CropTransform(10, 20, 80, 60), T.ResizeTransform(60, 80, 30, 40)])
    big = scale_transforms(crop_first, 2, (90, 120)).apply_image(original)
    np.testing.assert_array_equal(big, original[20:80, 10:90])  # 60x80 -> 2 x (30x40): the crop itself


def test_scale_transforms_without_a_resize_and_unknown_transforms():
    original = _smooth_image(30, 40)
    flip = T.TransformList([T.HFlipTransform(40)])
    big = scale_transforms(flip, 2, (30, 40)).apply_image(original)
    expected = cv2.resize(original[:, ::-1], (80, 60), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(big, expected)

    class Rotate(T.Transform):
        def apply_image(self, img):
            return np.rot90(img)

        def apply_coords(self, coords):
            return coords

    with pytest.raises(TypeError, match="Rotate"):
        scale_transforms(T.TransformList([Rotate()]), 2, (30, 40))
    with pytest.raises(ValueError, match="teacher_scale"):
        TeacherImageMapper(True, augmentations=[], teacher_scale=1)
