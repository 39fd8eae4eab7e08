"""PascalVOCDetectionEvaluator against APs computed by hand from small precision/recall tables."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest
import torch

from net_detr2.data.catalog import DatasetCatalog, MetadataCatalog
from net_detr2.evaluation import PascalVOCDetectionEvaluator
from net_detr2.evaluation.pascal_voc_evaluation import box_iou_np
from net_detr2.structures import Boxes, BoxMode, Instances
from net_detr2.utils import comm

CLASSES = ["a", "b", "c"]


def _anno(box, cls, difficult=0):
    return {"bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "category_id": cls, "difficult": difficult}


# Ground truth (loader frame). Class "a": 4 non-difficult boxes + 1 difficult; class "b": one box;
# class "c": none (its AP is undefined and must not enter the means).
DICTS = [
    {
        "file_name": "1.jpg",
        "image_id": "img1",
        "height": 100,
        "width": 100,
        "annotations": [_anno([0, 0, 10, 10], 0), _anno([20, 20, 30, 30], 0, difficult=1)],
    },
    {
        "file_name": "2.jpg",
        "image_id": "img2",
        "height": 100,
        "width": 100,
        "annotations": [_anno([0, 0, 10, 10], 0), _anno([50, 50, 60, 60], 0)],
    },
    {
        "file_name": "3.jpg",
        "image_id": "img3",
        "height": 100,
        "width": 100,
        "annotations": [_anno([0, 0, 20, 20], 0), _anno([30, 30, 40, 40], 1)],
    },
]

# (image, score, box, class)
DETS = [
    ("img1", 0.9, [0, 0, 10, 10], 0),  # TP (first box of img1)
    ("img1", 0.8, [20, 20, 30, 30], 0),  # best match is difficult -> ignored
    ("img2", 0.7, [0, 0, 10, 10], 0),  # TP
    ("img1", 0.6, [0, 0, 10, 10], 0),  # duplicate -> FP
    ("img3", 0.5, [0, 0, 10, 10], 0),  # IoU 100/400 = 0.25 -> FP
    ("img2", 0.4, [50, 50, 60, 61], 0),  # IoU 100/110 = 0.909: TP up to 0.90, FP at 0.95
    ("img3", 0.3, [30, 30, 40, 40], 1),  # class b: TP
    ("img3", 0.95, [0, 0, 20, 20], 2),  # class c has no ground truth
]

# Class "a" at IoU <= 0.90 (difficult detection dropped): TP TP FP FP TP, npos = 4
#   recall    .25  .5   .5   .5   .75
#   precision 1    1    2/3  1/2  3/5
# 11-point: recall >= 0,.1,...,.5 -> max precision 1 (6 points); >= .6,.7 -> 3/5 (2 points); >= .8.. -> 0
A_11PT = (6 * 1 + 2 * 0.6) / 11
# area: envelope 1 on (0, .5], 3/5 on (.5, .75], 0 beyond -> .5 * 1 + .25 * .6
A_AREA = 0.5 * 1 + 0.25 * 0.6
# At IoU 0.95 the last TP becomes FP: recall stops at .5 with precision 1.
A95_11PT = 6 / 11
A95_AREA = 0.5


@pytest.fixture
def voc_dataset():
    names = []

    def make(year):
        name = f"tiny_voc_{year}_{uuid.uuid4().hex[:6]}"
        DatasetCatalog.register(name, lambda: [dict(d) for d in DICTS])
        MetadataCatalog.get(name).set(thing_classes=CLASSES, year=year)
        names.append(name)
        return name

    yield make
    for n in names:
        DatasetCatalog.remove(n)
        MetadataCatalog.remove(n)


def _batches(dets):
    by_img = {}
    for img, s, b, c in dets:
        by_img.setdefault(img, []).append((s, b, c))
    inputs, outputs = [], []
    for img, lst in by_img.items():
        inst = Instances((100, 100))
        inst.pred_boxes = Boxes(torch.tensor([b for _, b, _ in lst], dtype=torch.float32))
        inst.scores = torch.tensor([s for s, _, _ in lst])
        inst.pred_classes = torch.tensor([c for _, _, c in lst])
        inputs.append({"image_id": img})
        outputs.append({"instances": inst})
    return inputs, outputs


@pytest.mark.parametrize("year", [2007, 2012])
def test_voc_ap_matches_hand_computed(voc_dataset, year):
    ev = PascalVOCDetectionEvaluator(voc_dataset(year))
    ev.reset()
    inputs, outputs = _batches(DETS)
    ev.process(inputs[:1], outputs[:1])
    ev.process(inputs[1:], outputs[1:])
    res = ev.evaluate()["bbox"]

    a50 = A_11PT if year == 2007 else A_AREA
    a95 = A95_11PT if year == 2007 else A95_AREA
    # class b is perfect (100 at every threshold); class c is NaN and excluded.
    assert res["AP50-a"] == pytest.approx(100 * a50)
    assert res["AP50-b"] == pytest.approx(100.0)
    assert math.isnan(res["AP50-c"])
    assert res["AP50"] == pytest.approx(100 * (a50 + 1) / 2)
    assert res["AP75"] == pytest.approx(100 * (a50 + 1) / 2)
    # thresholds .50 ... .90 (9 of them) give a50, .95 gives a95
    assert res["AP"] == pytest.approx(100 * ((9 * a50 + a95) / 10 + 1) / 2)
    assert res["AP50_11pt"] == pytest.approx(100 * (A_11PT + 1) / 2)
    assert res["AP50_area"] == pytest.approx(100 * (A_AREA + 1) / 2)


def test_use_07_metric_override(voc_dataset):
    ev = PascalVOCDetectionEvaluator(voc_dataset(2012), use_07_metric=True)
    ev.process(*_batches(DETS))
    assert ev.evaluate()["bbox"]["AP50-a"] == pytest.approx(100 * A_11PT)


def test_difficult_only_match_is_not_a_false_positive(voc_dataset):
    # Only the detection on the difficult box plus one TP: precision stays 1.
    ev = PascalVOCDetectionEvaluator(voc_dataset(2012))
    ev.process(*_batches([DETS[1], DETS[0]]))
    res = ev.evaluate()["bbox"]
    assert res["AP50-a"] == pytest.approx(25.0)  # recall .25 at precision 1 (area metric)


def test_no_predictions_gives_zero_ap(voc_dataset):
    ev = PascalVOCDetectionEvaluator(voc_dataset(2007))
    res = ev.evaluate()["bbox"]
    assert res["AP50"] == 0.0 and res["AP"] == 0.0


def test_gathers_predictions_from_ranks(voc_dataset, monkeypatch):
    name = voc_dataset(2007)
    rank1 = PascalVOCDetectionEvaluator(name)
    inputs, outputs = _batches(DETS)
    rank1.process(inputs[1:], outputs[1:])
    rank0 = PascalVOCDetectionEvaluator(name)
    rank0.process(inputs[:1], outputs[:1])
    monkeypatch.setattr(comm, "gather", lambda data, dst=0, group=None: [data, dict(rank1._predictions)])
    monkeypatch.setattr(comm, "is_main_process", lambda: True)
    assert rank0.evaluate()["bbox"]["AP50-a"] == pytest.approx(100 * A_11PT)
    monkeypatch.setattr(comm, "is_main_process", lambda: False)
    assert rank0.evaluate() is None


def _devkit_iou(bb, gt):
    """The VOC devkit formula on 1-based inclusive pixel boxes (+1 on every extent)."""
    iw = max(min(bb[2], gt[2]) - max(bb[0], gt[0]) + 1.0, 0.0)
    ih = max(min(bb[3], gt[3]) - max(bb[1], gt[1]) + 1.0, 0.0)
    inter = iw * ih
    uni = (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0) + (gt[2] - gt[0] + 1.0) * (gt[3] - gt[1] + 1.0) - inter
    return inter / uni


def test_pixel_convention_equals_devkit():
    """Loader frame = file box with xmin-1, ymin-1; detectron2 writes predictions back with +1.
    The continuous IoU in the loader frame must equal the devkit's +1 IoU in the file frame."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        gx0, gx1 = np.sort(rng.integers(1, 60, 2))
        gy0, gy1 = np.sort(rng.integers(1, 60, 2))
        xml_gt = [gx0, gy0, gx1, gy1]  # 1-based inclusive, as in the XML
        loader_gt = [gx0 - 1.0, gy0 - 1.0, gx1, gy1]  # what the loader stores
        px0, px1 = np.sort(rng.uniform(0, 60, 2))
        py0, py1 = np.sort(rng.uniform(0, 60, 2))
        pred = [px0, py0, px1 + 1, py1 + 1]  # model output, loader frame
        devkit_pred = [pred[0] + 1, pred[1] + 1, pred[2], pred[3]]
        assert box_iou_np(np.array([pred]), np.array([loader_gt]))[0, 0] == pytest.approx(
            _devkit_iou(devkit_pred, xml_gt), abs=1e-12
        )
    # A half-overlap is exactly 0.5, which is *not* a match (the devkit needs IoU > threshold).
    assert box_iou_np(np.array([[0, 0, 5, 10]]), np.array([[0, 0, 10, 10]]))[0, 0] == 0.5


def test_iou_exactly_at_threshold_is_false_positive(voc_dataset):
    ev = PascalVOCDetectionEvaluator(voc_dataset(2012))
    ev.process(*_batches([("img1", 0.9, [0, 0, 5, 10], 0)]))
    assert ev.evaluate()["bbox"]["AP50-a"] == 0.0


def test_shapes_voc_val_ground_truth_gives_ap_100():
    dicts = DatasetCatalog.get("shapes_voc_val")
    ev = PascalVOCDetectionEvaluator("shapes_voc_val")
    assert not ev._is_2007  # year 2012 -> area metric
    for d in dicts:
        boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in d["annotations"]]
        inst = Instances((d["height"], d["width"]))
        inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        inst.scores = torch.ones(len(boxes))
        inst.pred_classes = torch.tensor([a["category_id"] for a in d["annotations"]], dtype=torch.int64)
        ev.process([{"image_id": d["image_id"]}], [{"instances": inst}])
    res = ev.evaluate()["bbox"]
    assert res["AP"] == pytest.approx(100.0) and res["AP50_11pt"] == pytest.approx(100.0)


def _devkit_reference_ap(dets, gt_by_img, thr, use_07):
    """A literal transcription of the devkit loop: global score order, 1-based +1 boxes, strict '>'."""
    dets = sorted(dets, key=lambda d: -d[1])
    npos = sum(int(not dif) for boxes in gt_by_img.values() for _, dif in boxes)
    taken = {img: [False] * len(b) for img, b in gt_by_img.items()}
    tp, fp = [], []
    for img, _, box in dets:
        bb = [box[0] + 1, box[1] + 1, box[2], box[3]]  # what detectron2 writes to the result file
        best, jbest = -np.inf, -1
        for j, (g, _) in enumerate(gt_by_img.get(img, [])):
            xml = [g[0] + 1, g[1] + 1, g[2], g[3]]  # the XML numbers the loader read
            o = _devkit_iou(bb, xml)
            if o > best:
                best, jbest = o, j
        if best > thr:
            if gt_by_img[img][jbest][1]:
                continue
            if not taken[img][jbest]:
                taken[img][jbest] = True
                tp.append(1), fp.append(0)
            else:
                tp.append(0), fp.append(1)
        else:
            tp.append(0), fp.append(1)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec = tp / npos
    prec = tp / np.maximum(tp + fp, 1e-12)
    if use_07:
        return sum((prec[rec >= t / 10].max() if (rec >= t / 10).any() else 0) for t in range(11)) / 11
    mrec, mpre = [0.0, *rec, 1.0], [0.0, *prec, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum((mrec[i + 1] - mrec[i]) * mpre[i + 1] for i in range(len(mrec) - 1) if mrec[i + 1] != mrec[i])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_case_matches_devkit_transcription(seed):
    rng = np.random.default_rng(seed)
    gt_by_img, dicts, dets = {}, [], []
    for i in range(6):
        boxes = []
        for _ in range(rng.integers(1, 5)):
            x0, y0 = rng.integers(0, 80, 2).astype(float)
            w, h = rng.integers(5, 40, 2)
            boxes.append(([x0, y0, x0 + w, y0 + h], bool(rng.random() < 0.2)))
        gt_by_img[f"i{i}"] = boxes
        dicts.append(
            {
                "image_id": f"i{i}",
                "height": 128,
                "width": 128,
                "annotations": [_anno(b, 0, int(dif)) for b, dif in boxes],
            }
        )
        for b, _ in boxes:  # jittered copies, some duplicated, plus random false positives
            for _ in range(rng.integers(0, 3)):
                j = rng.normal(0, 1.5, 4)
                dets.append(
                    (f"i{i}", float(rng.random()), [b[0] + j[0], b[1] + j[1], b[2] + j[2] + 1, b[3] + j[3] + 1])
                )
        for _ in range(2):
            x0, y0 = rng.uniform(0, 90, 2)
            dets.append((f"i{i}", float(rng.random()), [x0, y0, x0 + 20, y0 + 20]))
    assert any(not d for bs in gt_by_img.values() for _, d in bs), "the seed must draw a non-difficult box"
    name = f"rand_voc_{uuid.uuid4().hex[:6]}"
    DatasetCatalog.register(name, lambda: dicts)
    MetadataCatalog.get(name).set(thing_classes=["a"], year=2007)
    try:
        for use_07 in (True, False):
            ev = PascalVOCDetectionEvaluator(name, use_07_metric=use_07)
            ev.process(*_batches([(img, s, b, 0) for img, s, b in dets]))
            res = ev.evaluate()["bbox"]
            for thr, key in ((0.5, "AP50"), (0.75, "AP75")):
                expected = 100 * _devkit_reference_ap(dets, gt_by_img, thr, use_07)
                assert 5 < expected < 95  # a non-trivial curve
                assert res[key] == pytest.approx(expected, abs=1e-9)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
