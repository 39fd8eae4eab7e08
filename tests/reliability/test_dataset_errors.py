"""Datasets and images: malformed COCO records, binary YOLO labels, 16-bit PNGs and decompression bombs."""

from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from net_detr2.data.datasets import load_coco_json
from net_detr2.data.datasets.yolo import load_yolo_instances
from net_detr2.data.detection_utils import UnreadableImageError, read_image
from net_detr2.utils.visualizer import _read_rgb

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
import demo  # noqa: E402


# ---------------------------------------------------------------------------- COCO json records
def _coco(tmp_path: Path, images=None, annotations=None) -> Path:
    data = {
        "images": images
        if images is not None
        else [
            {"id": 1, "file_name": "a.jpg", "height": 10, "width": 20},
            {"id": 2, "file_name": "b.jpg", "height": 30, "width": 40},
        ],
        "annotations": annotations
        if annotations is not None
        else [{"id": 5, "image_id": 2, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 0}],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (tmp_path / "imgs").mkdir(exist_ok=True)
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path


def _load(path: Path):
    return load_coco_json(str(path), str(path.parent / "imgs"))


def test_coco_records_missing_fields_or_with_bad_values_name_file_and_record(tmp_path):
    good = _load(_coco(tmp_path))
    assert [d["height"] for d in good] == [10, 30] and good[1]["annotations"][0]["bbox"] == [1.0, 2.0, 3.0, 4.0]

    img = {"id": 2, "file_name": "b.jpg", "width": 40}
    cases = [
        (
            dict(images=[{"id": 1, "file_name": "a.jpg", "height": 10, "width": 20}, img]),
            r"image #1 \(id 2\) has no 'height'",
        ),
        (dict(images=[{"id": 1, "height": 10, "width": 20}]), r"image #0 \(id 1\) has no 'file_name'"),
        (
            dict(images=[{"id": 1, "file_name": "a.jpg", "height": "10", "width": 20}]),
            r"image #0 \(id 1\): 'height' is '10'",
        ),
        (dict(images=[{"id": 1, "file_name": "a.jpg", "height": 0, "width": 20}]), r"image #0 \(id 1\): 'height' is 0"),
        (
            dict(annotations=[{"id": 5, "category_id": 1, "bbox": [1, 2, 3, 4]}]),
            r"annotation #0 \(id 5\) has no 'image_id'",
        ),
        (
            dict(annotations=[{"id": 5, "image_id": 2, "category_id": 1, "bbox": ["1", "2", "3", "4"]}]),
            r"annotation #0 \(id 5\) of image 2 has a malformed bbox \['1', '2', '3', '4'\]",
        ),
        (
            dict(annotations=[{"id": 7, "image_id": 2, "category_id": 1, "bbox": [1, 2, float("nan"), 4]}]),
            r"annotation #0 \(id 7\) of image 2 has a malformed bbox \[1, 2, nan, 4\]",
        ),
        (
            dict(annotations=[{"image_id": 2, "category_id": 1, "bbox": [1, 2, 3]}]),
            r"annotation #0 of image 2 has a malformed bbox",
        ),
    ]
    for kwargs, match in cases:
        path = _coco(tmp_path, **kwargs)
        with pytest.raises(ValueError, match=rf"{path}: {match}"):
            _load(path)


# ---------------------------------------------------------------------------- YOLO labels
def _yolo(tmp_path: Path, label: bytes) -> tuple[str, str]:
    images, labels = tmp_path / "train" / "images", tmp_path / "train" / "labels"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(images / "a.png")
    (labels / "a.txt").write_bytes(label)
    return str(images), str(labels)


def test_binary_yolo_label_file_names_the_file(tmp_path):
    images, labels = _yolo(tmp_path, b"0 0.5 0.5 0.2 0.2\n\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    with pytest.raises(ValueError, match=rf"{labels}/a\.txt:2: not a UTF-8 text label file \(byte 0x89 at offset 18\)"):
        load_yolo_instances(images, labels, ["fish"])


def test_yolo_label_with_bom_and_crlf_still_loads(tmp_path):
    images, labels = _yolo(tmp_path, "\ufeff0 0.5 0.5 0.2 0.2\r\n".encode())
    (d,) = load_yolo_instances(images, labels, ["fish"])
    assert d["annotations"][0]["bbox"] == pytest.approx([12.0, 8.0, 18.0, 12.0])


# ---------------------------------------------------------------------------- 16-bit images
def test_16bit_grayscale_png_is_scaled_not_saturated(tmp_path):
    values = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)  # 0 .. 64491
    path = tmp_path / "depth16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I;16")
    expected = np.round(values / 257.0).astype(np.uint8)  # 65535 -> 255: the full 16-bit range onto 8 bits
    bgr = read_image(str(path), "BGR")
    assert bgr.dtype == np.uint8 and bgr.shape == (48, 64, 3)
    for c in range(3):
        assert np.array_equal(bgr[:, :, c], expected)
    assert (bgr == 255).mean() < 0.01  # PIL's own convert("RGB") saturates 99.6% of these pixels to 255
    assert np.array_equal(read_image(str(path), "L")[:, :, 0], expected)

    # demo.py and the Visualizer read pictures the same way.
    assert np.array_equal(demo.read_image(path, "RGB"), bgr[:, :, ::-1])
    assert np.array_equal(_read_rgb(str(path)), bgr[:, :, ::-1])


def test_16bit_extremes_and_32bit_float_images(tmp_path):
    path = tmp_path / "extremes.png"
    Image.fromarray(np.array([[0, 128, 129, 257, 32767, 65535]], np.uint16)).save(path)
    assert read_image(str(path), "L")[0, :, 0].tolist() == [0, 0, 1, 1, 127, 255]
    path = tmp_path / "float.tif"
    Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(path)
    with pytest.raises(UnreadableImageError, match=rf"{path}.*32-bit float pixels"):
        read_image(str(path), "BGR")


# ---------------------------------------------------------------------------- decompression bombs
def _png_header_only(path: Path, width: int, height: int) -> None:
    """A ~60-byte PNG whose header claims ``width`` x ``height`` pixels (10^10 here: 10 GB to decode)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def test_image_over_the_decompression_bomb_limit_names_the_file(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 100_000, 100_000)
    with pytest.raises(UnreadableImageError, match=rf"{bomb} is over PIL's decompression-bomb limit"):
        read_image(str(bomb))
    # Between 1x and 2x the limit PIL only warns: refused as well, before decoding.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    small = tmp_path / "twelve.png"
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(small)
    with pytest.raises(UnreadableImageError, match=rf"{small} is 12x12 = 144 pixels, over .* limit of 100"):
        read_image(str(small))
    # The YOLO loader reads image sizes from headers: the same check, naming the image.
    images, labels = _yolo(tmp_path / "yolo", b"")
    with pytest.raises(
        UnreadableImageError, match=r"images/a\.png is over PIL.s decompression-bomb limit: .*600 pixels"
    ):
        load_yolo_instances(images, labels, ["fish"])
