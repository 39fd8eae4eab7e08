"""Transforms, augmentations (incl. the SSD pipeline), image reading and DatasetMapper."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import net_detr2.data.transforms as T
from net_detr2.data import DatasetMapper, MapDataset
from net_detr2.data import detection_utils as utils
from net_detr2.structures import BoxMode


def test_resize_shortest_edge_output_shape():
    assert T.ResizeShortestEdge.get_output_shape(480, 640, 800, 1333) == (800, 1067)
    # long side capped: 500x2000 -> 800x3200 -> scaled by 1333/3200
    assert T.ResizeShortestEdge.get_output_shape(500, 2000, 800, 1333) == (333, 1333)
    np.random.seed(0)
    aug = T.ResizeShortestEdge((288, 320, 352), max_size=512, sample_style="choice")
    img = np.zeros((256, 320, 3), np.uint8)
    shapes = {aug.get_transform(img).new_h for _ in range(40)}
    assert shapes == {288, 320, 352}
    with pytest.raises(ValueError, match="sample_style"):
        T.ResizeShortestEdge(800, sample_style="random")


def test_geometric_transforms_on_boxes():
    box = np.array([[10, 20, 30, 40]], np.float32)
    np.testing.assert_allclose(T.HFlipTransform(100).apply_box(box), [[70, 20, 90, 40]])
    np.testing.assert_allclose(T.VFlipTransform(50).apply_box(box), [[10, 10, 30, 30]])
    r = T.ResizeTransform(50, 100, 100, 50)
    np.testing.assert_allclose(r.apply_box(box), [[5, 40, 15, 80]])
    np.testing.assert_allclose(r.inverse().apply_box(r.apply_box(box)), box)
    np.testing.assert_allclose(T.CropTransform(5, 6, 20, 20).apply_box(box), [[5, 14, 25, 34]])
    np.testing.assert_allclose(T.PadTransform(3, 4, 0, 0).apply_box(box), [[13, 24, 33, 44]])
    tl = T.TransformList([T.HFlipTransform(100), T.ResizeTransform(50, 100, 25, 50)])
    np.testing.assert_allclose(tl.apply_box(box), [[35, 10, 45, 20]])
    img = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
    assert T.HFlipTransform(3).apply_image(img)[:, :, 0].tolist() == [[2, 1, 0], [5, 4, 3]]
    pad = T.PadTransform(1, 0, 1, 1, pad_value=(7, 8, 9)).apply_image(np.zeros((2, 2, 3), np.uint8))
    assert pad.shape == (3, 4, 3) and pad[2, 0].tolist() == [7, 8, 9] and pad[0, 1].tolist() == [0, 0, 0]


def test_crop_keep_center_only_collapses_boxes_with_center_outside():
    crop = T.CropTransform(10, 10, 50, 50, keep_center_only=True)
    out = crop.apply_box(np.array([[0, 0, 30, 30], [0, 0, 18, 18], [55, 55, 100, 100]], np.float32))
    np.testing.assert_allclose(out[0], [-10, -10, 20, 20])  # centre (15, 15) inside: kept, clipped later
    np.testing.assert_allclose(out[1], [0, 0, 0, 0])  # centre (9, 9) outside
    np.testing.assert_allclose(out[2], [0, 0, 0, 0])  # centre (77.5, 77.5) outside


def test_photometric_distort_is_deterministic_and_geometry_free():
    rng = np.random.RandomState(0)
    img = rng.randint(0, 256, (20, 30, 3)).astype(np.uint8)
    t = T.PhotometricDistortTransform(brightness=10.0)
    np.testing.assert_array_equal(t.apply_image(img), np.clip(img.astype(int) + 10, 0, 255))
    # a zero hue shift and unit saturation round-trip through HSV within rounding
    same = T.PhotometricDistortTransform(saturation=1.0, hue=0.0).apply_image(img)
    assert np.abs(same.astype(int) - img).max() <= 1
    np.random.seed(3)
    tf = T.PhotometricDistort().get_transform(img)
    assert np.array_equal(tf.apply_image(img), tf.apply_image(img))
    box = np.array([[1, 2, 3, 4]], np.float32)
    np.testing.assert_array_equal(tf.apply_box(box), box)


def _rect_image(h=200, w=300, rect=(50, 60, 130, 120)):
    """Low-green noise background with one pure-green rectangle (x1, y1, x2, y2), BGR."""
    rng = np.random.RandomState(1)
    img = rng.randint(0, 100, (h, w, 3)).astype(np.uint8)
    x1, y1, x2, y2 = rect
    img[y1:y2, x1:x2] = (0, 255, 0)
    return img


def _green_bbox(img):
    m = (img[:, :, 1] > 180) & (img[:, :, 0] < 80) & (img[:, :, 2] < 80)
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def test_ssd_augmentations_keep_boxes_on_the_pixels(tmp_path):
    """End to end through DatasetMapper: after zoom-out, min-IoU crop, flip and the 300x300 resize, the
    ground-truth box still bounds the rectangle's pixels (to within the resize's interpolation)."""
    rect = (50, 60, 130, 120)
    path = tmp_path / "rect.png"
    cv2.imwrite(str(path), _rect_image(rect=rect))
    d = {
        "file_name": str(path),
        "height": 200,
        "width": 300,
        "image_id": 0,
        "annotations": [{"bbox": list(rect), "bbox_mode": BoxMode.XYXY_ABS, "category_id": 3, "iscrowd": 0}],
    }
    augs = [
        a for a in T.ssd_train_augmentations(300, pixel_mean=(104, 117, 123)) if not isinstance(a, T.PhotometricDistort)
    ]  # colour jitter would hide the unique colour
    mapper = DatasetMapper(True, augmentations=augs)
    ds = MapDataset([d], mapper)
    kept = 0
    widths = set()
    for seed in range(40):
        out = ds[(0, seed)]
        img = out["image"].permute(1, 2, 0).numpy()
        assert img.shape == (300, 300, 3)
        inst = out["instances"]
        if len(inst) == 0:
            continue  # SSD's crop dropped it (its centre fell outside the patch)
        kept += 1
        box = inst.gt_boxes.tensor[0].numpy()
        assert inst.gt_classes.tolist() == [3]
        pix = _green_bbox(img)
        assert pix is not None, f"seed {seed}: box {box} kept but no rectangle pixel left"
        # the rectangle edges are sharp in the source, so the pixel extent matches the box up to the
        # interpolation at the border: within one source pixel scaled to the output, plus one
        tol = max(2.0, 300.0 / min(rect[2] - rect[0], rect[3] - rect[1]))
        assert np.abs(pix - box).max() <= tol + 1, f"seed {seed}: box {box} vs pixels {pix}"
        widths.add(round(float(box[2] - box[0])))
    assert kept >= 25
    assert len(widths) >= 10  # the zoom-out / crop really varied the geometry
    assert mapper.box_stats["images"] == 40


def test_min_iou_crop_honours_the_constraint():
    img = np.zeros((200, 300, 3), np.uint8)
    boxes = np.array([[50, 60, 130, 120], [200, 20, 280, 180]], np.float32)
    aug = T.MinIoURandomCrop(min_ious=(0.5,), include_original=False)
    np.random.seed(0)
    n_crops = 0
    for _ in range(50):
        t = aug.get_transform(img, boxes)
        if isinstance(t, T.NoOpTransform):
            continue
        n_crops += 1
        window = np.array([t.x0, t.y0, t.x0 + t.w, t.y0 + t.h], np.float32)
        lt = np.maximum(window[:2], boxes[:, :2])
        rb = np.minimum(window[2:], boxes[:, 2:])
        inter = np.clip(rb - lt, 0, None).prod(1)
        iou = inter / ((window[2:] - window[:2]).prod() + (boxes[:, 2:] - boxes[:, :2]).prod(1) - inter)
        assert iou.max() >= 0.5
        assert t.w >= 0.3 * 300 - 1 and t.h >= 0.3 * 200 - 1 and 0.5 <= t.h / t.w <= 2.0 + 1e-6
    assert n_crops >= 20  # 50 trials do not always find a window with IoU >= 0.5


def test_read_image_formats_exif_and_errors(tmp_path):
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB
    Image.fromarray(rgb).save(tmp_path / "red.png")
    bgr = utils.read_image(str(tmp_path / "red.png"), "BGR")
    assert bgr.shape == (20, 40, 3) and bgr[0, 0].tolist() == [0, 0, 200]
    assert utils.read_image(str(tmp_path / "red.png"), "RGB")[0, 0].tolist() == [200, 0, 0]
    assert utils.read_image(str(tmp_path / "red.png"), "L").shape == (20, 40, 1)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(rgb).save(tmp_path / "rot.jpg", exif=exif)
    assert utils.read_image(str(tmp_path / "rot.jpg"), "BGR").shape == (40, 20, 3)
    with pytest.raises(utils.UnreadableImageError, match=str(tmp_path / "missing.jpg")):
        utils.read_image(str(tmp_path / "missing.jpg"))
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(utils.UnreadableImageError, match="corrupt.jpg"):
        utils.read_image(str(tmp_path / "corrupt.jpg"))
    good = (tmp_path / "rot.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(good[: len(good) // 2])
    with pytest.raises(utils.UnreadableImageError, match="truncated.jpg"):
        utils.read_image(str(tmp_path / "truncated.jpg"))


def _toy_dict(tmp_path, annos, h=60, w=80):
    path = tmp_path / "toy.png"
    cv2.imwrite(str(path), np.random.RandomState(0).randint(0, 255, (h, w, 3)).astype(np.uint8))
    return {"file_name": str(path), "height": h, "width": w, "image_id": 7, "annotations": annos}


def test_mapper_clips_drops_and_counts_degenerate_boxes(tmp_path):
    annos = [
        {"bbox": [10, 10, 20, 30], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0},  # fine
        {"bbox": [70, 50, 20, 20], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1},  # clipped
        {"bbox": [30, 30, 30, 40], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 2},  # zero width
        {"bbox": [100, 10, 120, 20], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 3},  # outside
        {"bbox": [0, 0, 80, 60], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 4, "iscrowd": 1},  # crowd: left out
    ]
    d = _toy_dict(tmp_path, annos)
    mapper = DatasetMapper(True, augmentations=[])
    out = mapper(d)
    assert out["image"].dtype == torch.uint8 and out["image"].shape == (3, 60, 80)
    assert (out["height"], out["width"], out["image_id"], out["file_name"]) == (60, 80, 7, d["file_name"])
    assert "annotations" not in out
    inst = out["instances"]
    assert inst.gt_classes.tolist() == [0, 1]
    assert inst.gt_boxes.tensor.tolist() == [[10, 10, 20, 30], [70, 50, 80, 60]]
    assert dict(mapper.box_stats) == {"images": 1, "boxes": 4, "clipped": 1, "dropped": 2}
    assert len(d["annotations"]) == 5  # the input dict is not modified
    # eval mode: no instances unless asked
    assert "instances" not in DatasetMapper(False, augmentations=[])(d)
    assert len(DatasetMapper(False, augmentations=[], instances_in_eval=True)(d)["instances"]) == 2
    # a wrong size in the annotations is reported with the file
    with pytest.raises(utils.SizeMismatchError, match="toy.png"):
        mapper({**d, "height": 61})


def test_mapper_extra_inputs_hook_sees_the_original_and_the_transforms(tmp_path):
    d = _toy_dict(tmp_path, [{"bbox": [10, 10, 20, 30], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0}], h=61, w=80)
    seen = {}

    class Recording(DatasetMapper):
        def add_extra_inputs(self, dataset_dict, original, transforms):
            seen.update(original=original.copy(), transforms=transforms, keys=set(dataset_dict))
            dataset_dict["extra"] = 1

    augs = [T.ResizeShortestEdge(45, max_size=1000), T.RandomFlip(prob=1.0)]
    out = Recording(True, augmentations=augs)(d)
    np.testing.assert_array_equal(seen["original"], cv2.imread(d["file_name"]))
    # the transforms are those that made "image" from the original
    remade = seen["transforms"].apply_image(seen["original"])
    np.testing.assert_array_equal(out["image"].permute(1, 2, 0).numpy(), remade)
    assert out["image"].shape == (3, 45, 59) and out["extra"] == 1 and "image" in seen["keys"]
    # the plain mapper adds nothing
    assert set(DatasetMapper(True, augmentations=augs)(d)) == set(out) - {"extra"}


def test_random_crop_and_colour_augmentations():
    img = np.arange(100 * 80 * 3, dtype=np.int64).reshape(100, 80, 3).astype(np.uint8)
    np.random.seed(0)
    t = T.RandomCrop("absolute", (30, 40)).get_transform(img)
    out = t.apply_image(img)
    assert out.shape == (30, 40, 3)
    np.testing.assert_array_equal(out, img[t.y0 : t.y0 + 30, t.x0 : t.x0 + 40])
    t = T.RandomCrop("relative", (0.5, 0.25)).get_transform(img)
    assert (t.h, t.w) == (50, 20)
    for _ in range(10):
        t = T.RandomCrop("relative_range", (0.5, 0.5)).get_transform(img)
        assert 50 <= t.h <= 100 and 40 <= t.w <= 80
    flat = np.full((4, 4, 3), 100, np.uint8)
    b = T.RandomBrightness(1.5, 1.5).get_transform(flat)
    assert b.apply_image(flat)[0, 0].tolist() == [150, 150, 150]
    c = T.RandomContrast(0.5, 0.5).get_transform(img)
    mean = img.mean()
    np.testing.assert_allclose(
        c.apply_image(img).astype(float), np.clip(np.floor(0.5 * mean + 0.5 * img + 0.5), 0, 255)
    )
    gray = np.zeros((2, 2, 3), np.uint8)
    gray[..., 0] = 100  # pure red in RGB
    s = T.RandomSaturation(0.0, 0.0).get_transform(gray)
    assert s.apply_image(gray)[0, 0].tolist() == [30, 30, 30]  # 0.299 * 100, rounded
    aug_input = T.AugInput(img.copy(), boxes=np.array([[10, 10, 20, 20]], np.float32))
    tfms = aug_input.apply_augmentations([T.Resize((50, 40)), T.RandomFlip(prob=1.0)])
    assert aug_input.image.shape == (50, 40, 3)
    np.testing.assert_allclose(aug_input.boxes, [[30, 5, 35, 10]])
    np.testing.assert_allclose(tfms.inverse().apply_box(aug_input.boxes), [[10, 10, 20, 20]])


def test_our_transforms_are_kept_only_where_fvcore_differs():
    """Flips, NoOp and TransformList are fvcore's; each transform we keep computes something fvcore's does not."""
    from fvcore.transforms import transform as fv

    assert T.HFlipTransform is fv.HFlipTransform and T.TransformList is fv.TransformList
    assert issubclass(T.ResizeTransform, fv.Transform) and issubclass(T.CropTransform, fv.CropTransform)
    img = np.random.RandomState(0).randint(0, 256, (37, 53, 3)).astype(np.uint8)
    # Blend: ours rounds to the nearest integer, fvcore's truncates (0.299 * 100 = 29.9)
    flat = np.full((2, 2, 3), 100, np.uint8)
    assert T.BlendTransform(0.0, 0.701, 0.299).apply_image(flat)[0, 0, 0] == 30
    assert fv.BlendTransform(0.0, 0.701, 0.299).apply_image(flat)[0, 0, 0] == 29
    # Pad: a fill value per channel (SSD's expand fills with the pixel mean); fvcore's takes one number
    ours = T.PadTransform(2, 1, 0, 0, pad_value=(7, 8, 9)).apply_image(img)
    assert ours[0, 0].tolist() == [7, 8, 9] and np.array_equal(ours[1:, 2:], img)
    with pytest.raises(ValueError):
        fv.PadTransform(2, 1, 0, 0, pad_value=(7, 8, 9)).apply_image(img)
    # Resize: OpenCV's bilinear (the rest of the pipeline's); fvcore's ScaleTransform interpolates with PIL
    resized = T.ResizeTransform(37, 53, 20, 30).apply_image(img)
    np.testing.assert_array_equal(resized, cv2.resize(img, (30, 20), interpolation=cv2.INTER_LINEAR))
    assert not np.array_equal(resized, fv.ScaleTransform(37, 53, 20, 30, interp="bilinear").apply_image(img))
    # Crop: fvcore's, plus SSD's keep_center_only (tested above); without it the boxes are fvcore's
    box = np.array([[0, 0, 18, 18]], np.float32)
    np.testing.assert_array_equal(
        T.CropTransform(10, 10, 50, 50).apply_box(box), fv.CropTransform(10, 10, 50, 50).apply_box(box)
    )
