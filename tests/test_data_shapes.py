"""The synthetic `shapes` dataset: determinism, statistics, COCO/VOC consistency."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from net_detr2.data import DatasetCatalog, MetadataCatalog
from net_detr2.data.datasets.shapes import SHAPES_CLASSES, generate_shapes_dataset, render_shapes_image, shapes_root
from net_detr2.structures import BoxMode


def _hashes(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def shapes():
    """The registered datasets (generated into the cache on first use, a few seconds once per machine)."""
    return {n: DatasetCatalog.get(n) for n in ("shapes_train", "shapes_val", "shapes_voc_val")}


def test_generation_is_deterministic_and_prefix_stable(tmp_path, shapes):
    a = generate_shapes_dataset(tmp_path / "a", num_train=3, num_val=2)
    b = generate_shapes_dataset(tmp_path / "b", num_train=3, num_val=2)
    ha, hb = _hashes(a), _hashes(b)
    assert ha == hb and len(ha) == 3 + 2 + 2 + 3  # images, xmls, val.txt, 2 jsons
    # the first images of the full cached dataset are the same files
    full = shapes_root()
    for rel in (
        "train/train_000000.jpg",
        "train/train_000002.jpg",
        "VOC/JPEGImages/val_000001.jpg",
        "VOC/Annotations/val_000001.xml",
    ):
        assert hashlib.sha256((full / rel).read_bytes()).hexdigest() == ha[rel]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left behind
    img1, objs1 = render_shapes_image(5)
    img2, objs2 = render_shapes_image(5)
    assert np.array_equal(img1, img2) and objs1 == objs2


def test_counts_sizes_and_metadata(shapes):
    train, val = shapes["shapes_train"], shapes["shapes_val"]
    assert len(train) == 400 and len(val) == 100 and len(shapes["shapes_voc_val"]) == 100
    sizes, classes, heights = [], [], set()
    for d in train + val:
        assert d["width"] == 320 and 256 <= d["height"] <= 400
        heights.add(d["height"] > 320)
        for a in d["annotations"]:
            assert a["bbox_mode"] == BoxMode.XYWH_ABS and a["iscrowd"] == 0
            x, y, w, h = a["bbox"]
            assert x >= 0 and y >= 0 and x + w <= d["width"] and y + h <= d["height"] and w > 0 and h > 0
            sizes.append(np.sqrt(w * h))
            classes.append(a["category_id"])
    sizes = np.array(sizes)
    assert len(sizes) > 2500
    assert (sizes < 32).mean() >= 0.4
    assert sizes.min() >= 4 and sizes.max() <= 210 and (sizes > 96).mean() > 0.05
    counts = np.bincount(classes, minlength=6)
    assert len(counts) == 6 and counts.min() > 0.1 * len(classes)
    assert heights == {True, False}  # both orientations, for aspect-ratio grouping
    for name in ("shapes_train", "shapes_val", "shapes_voc_val"):
        assert MetadataCatalog.get(name).thing_classes == list(SHAPES_CLASSES)
    assert MetadataCatalog.get("shapes_val").evaluator_type == "coco"
    assert MetadataCatalog.get("shapes_voc_val").evaluator_type == "pascal_voc"


def test_coco_and_voc_val_agree(shapes):
    val, voc = shapes["shapes_val"], shapes["shapes_voc_val"]
    for c, v in zip(val[:20], voc[:20]):
        assert c["file_name"] == v["file_name"]
        assert (c["height"], c["width"]) == (v["height"], v["width"])
        cb = [BoxMode.convert(a["bbox"], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) for a in c["annotations"]]
        vb = [a["bbox"] for a in v["annotations"]]
        np.testing.assert_allclose(cb, vb)
        assert [a["category_id"] for a in c["annotations"]] == [a["category_id"] for a in v["annotations"]]


def test_object_masks_are_tight():
    """Each object's box is the extent of its drawn pixels: every border row/column of the mask has an
    object pixel (>= 128), and the larger side is close to the sampled size."""
    from net_detr2.data.datasets.shapes import _shape_mask

    rng = np.random.RandomState(0)
    for kind in SHAPES_CLASSES:
        for size in (6.0, 13.0, 40.0, 150.0):
            m = _shape_mask(kind, size, rng) >= 128
            assert m[0].any() and m[-1].any() and m[:, 0].any() and m[:, -1].any(), (kind, size)
            assert abs(max(m.shape) - size) <= 2, (kind, size, m.shape)


def _gen(out):
    generate_shapes_dataset(out, num_train=3, num_val=2)


def test_concurrent_first_use_is_safe(tmp_path):
    import multiprocessing as mp

    out = tmp_path / "shared"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_gen, args=(out,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    ref = generate_shapes_dataset(tmp_path / "ref", num_train=3, num_val=2)
    assert _hashes(out) == _hashes(ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref", "shared"]
