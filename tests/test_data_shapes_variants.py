"""The claim-shaped variants of `shapes`: determinism, boxes against pixels, recorded attributes against
pixels, registration, and the extra metrics their metadata asks of the COCO evaluator."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from net_detr2.data import DatasetCatalog, MetadataCatalog
from net_detr2.data.datasets.shapes import SHAPES_CLASSES, generate_shapes_dataset, register_shapes, shapes_root
from net_detr2.data.datasets.shapes_variants import IRREGULAR_CLASSES, SHAPES_VARIANTS, TINY_MAX

VARIANTS = sorted(SHAPES_VARIANTS)


def _hashes(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small_copies(tmp_path_factory):
    """Each variant generated twice with 3 train / 2 val images, and registered from the first copy under a
    test name (the registration code of the built-in names, without generating 500 images here)."""
    base = tmp_path_factory.mktemp("variants")
    out = {}
    for name in VARIANTS:
        v = SHAPES_VARIANTS[name]
        a = generate_shapes_dataset(base / f"{name}_a", num_train=3, num_val=2, variant=v)
        b = generate_shapes_dataset(base / f"{name}_b", num_train=3, num_val=2, variant=v)
        test_variant = dataclasses.replace(v, name=f"test_{name}")
        if f"test_{name}_val" not in DatasetCatalog:
            register_shapes(root=a, variant=test_variant)
        out[name] = (a, b, test_variant)
    return out


@pytest.mark.parametrize("name", VARIANTS)
def test_generation_is_deterministic(name, small_copies):
    a, b, _ = small_copies[name]
    ha, hb = _hashes(a), _hashes(b)
    assert ha == hb and len(ha) == 3 + 2 + 2 + 3  # images, xmls, val.txt, 2 jsons
    v = SHAPES_VARIANTS[name]
    img1, objs1, ex1 = v.render(7)
    img2, objs2, ex2 = v.render(7)
    assert np.array_equal(img1, img2) and objs1 == objs2 and ex1 == ex2
    assert not np.array_equal(img1, v.render(8)[0])


def _object_pixels(debug: dict, k: int):
    """Object k's full outline (mask >= 128) in image coordinates, its interior (mask == 255) and its colour."""
    x0, y0, m = debug["masks"][k]
    return x0, y0, m, debug["colors"][k]


@pytest.mark.parametrize("name", VARIANTS)
def test_boxes_match_pixels(name):
    """Each box is the tight extent of its object's drawn outline, lies in the image, and where the object
    shows (interior pixels it owns) the image before sensor noise has exactly the object's colour, but on the
    anti-aliased fringe (1 px) of something drawn over it."""
    import cv2

    v = SHAPES_VARIANTS[name]
    n_exact = n_shows = 0
    for seed in range(6):
        img, objects, extras = v.render(seed, debug=True)
        dbg = extras["debug"]
        h, w = img.shape[:2]
        assert w == 320 and 256 <= h <= 400
        decals = np.zeros((h, w), dtype=bool)  # (small clutter) parts drawn on objects in another colour
        for x, y, pw, ph, _ in extras.get("parts", []):
            decals[max(y - 1, 0) : y + ph + 1, max(x - 1, 0) : x + pw + 1] = True
        assert len(objects) == len(dbg["masks"]) >= 1
        for k, o in enumerate(objects):
            x0, y0, m, color = _object_pixels(dbg, k)
            ys, xs = np.nonzero(m >= 128)
            assert [x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1] == o["bbox"], (seed, k)
            x1, y1, x2, y2 = o["bbox"]
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            owner = dbg["owner"][y1:y2, x1:x2]
            shows = (m == 255) & (owner == k) & ~decals[y1:y2, x1:x2]
            if shows.any():
                exact = np.abs(dbg["clean"][y1:y2, x1:x2] - color).max(axis=2) < 1e-3
                fringe = cv2.dilate((owner != k).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
                assert not (shows & ~exact & ~fringe).any(), (seed, k)
                n_exact += int((shows & exact).sum())
                n_shows += int(shows.sum())
        # the written image is the clean one plus zero-mean noise
        assert abs(float(img.astype(np.float32).mean() - np.clip(dbg["clean"], 0, 255).mean())) < 2.0
    assert n_shows > 10000 and n_exact >= 0.95 * n_shows


def test_small_clutter_tiny_objects_and_decals():
    v = SHAPES_VARIANTS["shapes_small_clutter"]
    sides, n_parts = [], 0
    for seed in range(10):
        img, objects, extras = v.render(seed, debug=True)
        dbg = extras["debug"]
        large = [
            k for k, o in enumerate(objects) if max(o["bbox"][2] - o["bbox"][0], o["bbox"][3] - o["bbox"][1]) >= 48
        ]
        for k, o in enumerate(objects):
            x1, y1, x2, y2 = o["bbox"]
            sides.append(max(x2 - x1, y2 - y1))
            if k in large:
                continue
            # a tiny object never touches a large object's outline
            assert not np.isin(dbg["owner"][max(y1 - 1, 0) : y2 + 1, max(x1 - 1, 0) : x2 + 1], large).any()
        for x, y, pw, ph, cat in extras["parts"]:
            # each decal lies inside a large object's outline, which owns its pixels, and is no labelled box
            owners = set(np.unique(dbg["owner"][y : y + ph, x : x + pw]).tolist())
            assert len(owners) == 1 and owners.pop() in large and 1 <= cat <= 6
            assert [x, y, x + pw, y + ph] not in [o["bbox"] for o in objects]
            n_parts += 1
    sides = np.array(sides)
    assert (sides < TINY_MAX).mean() > 0.7 and (sides >= 64).sum() >= 10 and n_parts >= 20


def test_occluded_visible_share_is_what_the_pixels_show(small_copies):
    """The recorded share equals the share of the object's interior that still shows its colour in the
    picture (an independent count on the image before noise; objects of >= 800 interior pixels, where the
    anti-aliased rims matter little); shares spread over the three slices."""
    v = SHAPES_VARIANTS["shapes_occluded"]
    shares, n_checked = [], 0
    for seed in range(12):
        _, objects, extras = v.render(seed, debug=True)
        dbg = extras["debug"]
        for k, o in enumerate(objects):
            x0, y0, m, color = _object_pixels(dbg, k)
            region = dbg["clean"][y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]]
            interior = m == 255
            seen = (np.abs(region - color).max(axis=2) < 1e-3) & interior
            if interior.sum() >= 800:
                assert abs(seen.sum() / interior.sum() - o["visible"]) < 0.05, (seed, k, o)
                n_checked += 1
            shares.append(o["visible"])
    shares = np.array(shares)
    counts = np.histogram(shares, [0.0, 0.6, 0.9, 1.01])[0]
    assert (counts >= 0.15 * len(shares)).all(), counts
    assert n_checked >= 30
    # the json carries the same numbers as the renderer
    a, _, _ = small_copies["shapes_occluded"]
    coco = json.loads((a / "annotations" / "instances_val.json").read_text())
    offset = v.seed + 1_000_000  # the val split's first image seed
    _, objs0, _ = v.render(offset)
    assert [x["visible"] for x in coco["annotations"] if x["image_id"] == 1] == [o["visible"] for o in objs0]


def test_irregular_boxes_hold_background():
    v = SHAPES_VARIANTS["shapes_irregular"]
    fills, kinds = [], set()
    for seed in range(10):
        _, objects, extras = v.render(seed, debug=True)
        for k, o in enumerate(objects):
            _, _, m, _ = _object_pixels(extras["debug"], k)
            assert o["fill"] == pytest.approx((m >= 128).sum() / m.size, abs=1e-3)
            fills.append(o["fill"])
            kinds.add(o["category_id"])
    fills = np.array(fills)
    assert kinds == set(range(6)) and np.median(fills) < 0.5 and (fills < 0.4).mean() > 0.3


@pytest.mark.parametrize("name", VARIANTS)
def test_registration(name, small_copies):
    v = SHAPES_VARIANTS[name]
    classes = list(IRREGULAR_CLASSES if name == "shapes_irregular" else SHAPES_CLASSES)
    for split in ("train", "val", "voc_val"):
        assert f"{name}_{split}" in DatasetCatalog
        assert MetadataCatalog.get(f"{name}_{split}").thing_classes == classes
    assert MetadataCatalog.get(f"{name}_val").image_root == str(shapes_root(v) / "VOC" / "JPEGImages")
    for key, value in v.evaluation.items():
        assert MetadataCatalog.get(f"{name}_val").get(key) == value
    # the same registration code, on a small copy: COCO and VOC loaders agree, attributes come along
    _, _, tv = small_copies[name]
    train, val, voc = (DatasetCatalog.get(f"{tv.name}_{s}") for s in ("train", "val", "voc_val"))
    assert len(train) == 3 and len(val) == len(voc) == 2
    for c, x in zip(val, voc):
        assert c["file_name"] == x["file_name"] and len(c["annotations"]) == len(x["annotations"])
        for a in c["annotations"]:
            assert all(attr in a for attr in v.attributes)


def test_evaluator_reports_the_variants_extra_metrics(small_copies, tmp_path):
    """The val metadata's extras reach COCOEvaluator: ground-truth boxes as predictions score 100 on every
    extra metric (NaN where a slice is empty); an explicit empty option switches one off."""
    import torch

    from net_detr2.evaluation import COCOEvaluator
    from net_detr2.structures import Boxes, BoxMode, Instances

    expected = {
        "shapes_small_clutter": {"APtiny"},
        "shapes_occluded": {"APvis0_60", "APvis60_90", "APvis90_100"},
        "shapes_irregular": {"AP90", "APfill0_40", "APfill40_100"},
    }
    for name, extra in expected.items():
        tv = small_copies[name][2]
        dicts = DatasetCatalog.get(f"{tv.name}_val")
        ev = COCOEvaluator(f"{tv.name}_val", output_dir=str(tmp_path / name))
        off = COCOEvaluator(f"{tv.name}_val", gt_slices={}, extra_iou_thresholds=[], extra_area_ranges={})
        for d in dicts:
            boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in d["annotations"]]
            inst = Instances((d["height"], d["width"]))
            inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
            inst.scores = torch.ones(len(boxes))
            inst.pred_classes = torch.tensor([a["category_id"] for a in d["annotations"]])
            for e in (ev, off):
                e.process([{"image_id": d["image_id"]}], [{"instances": inst}])
        res = ev.evaluate()["bbox"]
        assert extra <= set(res), (name, sorted(res))
        assert all(res[m] == pytest.approx(100.0) or np.isnan(res[m]) for m in extra)
        assert any(res[m] == pytest.approx(100.0) for m in extra)
        assert not extra & set(off.evaluate()["bbox"])
