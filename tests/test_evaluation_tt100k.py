"""TT100KEvaluator: accuracy / recall / F1 per size bin on a hand-made case."""

from __future__ import annotations

import math
import uuid

import pytest
import torch

from net_detr2.data.catalog import DatasetCatalog, MetadataCatalog
from net_detr2.evaluation import TT100KEvaluator
from net_detr2.evaluation.tt100k_evaluation import match_tt100k_image
from net_detr2.structures import Boxes, BoxMode, Instances


def _anno(box, cls, crowd=0):
    return {"bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "category_id": cls, "iscrowd": crowd}


DICTS = [
    {
        "file_name": "a.jpg",
        "image_id": 1,
        "height": 400,
        "width": 400,
        "annotations": [
            _anno([0, 0, 20, 20], 0),  # small  (400 px²)
            _anno([100, 100, 150, 150], 0),  # medium (2500 px²)
            _anno([200, 200, 320, 320], 1),  # large  (14400 px²)
        ],
    },
    {
        "file_name": "b.jpg",
        "image_id": 2,
        "height": 400,
        "width": 400,
        "annotations": [
            _anno([10, 10, 30, 30], 0),  # small
        ],
    },
]

PREDS = {
    1: [
        ([0, 0, 20, 20], 0.9, 0),  # TP small
        ([100, 100, 150, 150], 0.4, 0),  # below the 0.5 threshold: the medium object is missed
        ([200, 200, 320, 320], 0.8, 0),  # wrong class on the large object: FP large
        ([200, 200, 320, 320], 0.7, 1),  # TP large
        ([0, 0, 20, 20], 0.6, 0),
    ],  # duplicate: FP small
    2: [
        ([50, 50, 60, 60], 0.95, 0),  # FP small (area 100)
        ([10, 10, 30, 31], 0.85, 0),  # IoU 400/420: TP small
        ([300, 300, 350, 350], 0.9, 0),
    ],  # FP medium (area 2500)
}


@pytest.fixture
def tt100k_name():
    name = f"tiny_tt100k_{uuid.uuid4().hex[:6]}"
    DatasetCatalog.register(name, lambda: [dict(d) for d in DICTS])
    MetadataCatalog.get(name).set(thing_classes=["pl50", "pn"])
    yield name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def _run(ev):
    ev.reset()
    for image_id, preds in PREDS.items():
        inst = Instances((400, 400))
        inst.pred_boxes = Boxes(torch.tensor([p[0] for p in preds], dtype=torch.float32))
        inst.scores = torch.tensor([p[1] for p in preds])
        inst.pred_classes = torch.tensor([p[2] for p in preds])
        ev.process([{"image_id": image_id}], [{"instances": inst}])
    return ev.evaluate()


def test_counts_and_metrics(tt100k_name):
    res = _run(TT100KEvaluator(tt100k_name, score_threshold=0.5))
    t = res["tt100k"]
    # small: 2 GT, 2 TP, 2 FP; medium: 1 GT, 0 TP, 1 FP; large: 1 GT, 1 TP, 1 FP; overall 4 / 3 / 4
    assert (t["gt_small"], t["tp_small"], t["fp_small"]) == (2, 2, 2)
    assert (t["gt_medium"], t["tp_medium"], t["fp_medium"]) == (1, 0, 1)
    assert (t["gt_large"], t["tp_large"], t["fp_large"]) == (1, 1, 1)
    assert (t["gt_overall"], t["tp_overall"], t["fp_overall"]) == (4, 3, 4)
    assert t["acc_small"] == pytest.approx(50.0) and t["rec_small"] == pytest.approx(100.0)
    assert t["f1_small"] == pytest.approx(2 * 50 * 100 / 150)
    assert t["acc_medium"] == 0.0 and t["rec_medium"] == 0.0 and t["f1_medium"] == 0.0
    assert t["acc_overall"] == pytest.approx(300 / 7) and t["rec_overall"] == pytest.approx(75.0)
    p, r = 3 / 7, 0.75
    assert t["f1_overall"] == pytest.approx(100 * 2 * p * r / (p + r))
    # COCO metrics come along under "bbox".
    assert 0 < res["bbox"]["AP"] < 100


def test_score_threshold_changes_counts(tt100k_name):
    t = _run(TT100KEvaluator(tt100k_name, score_threshold=0.3, run_coco=False))["tt100k"]
    assert (t["tp_medium"], t["fp_medium"]) == (1, 1)
    assert t["rec_overall"] == pytest.approx(100.0)
    t = _run(TT100KEvaluator(tt100k_name, score_threshold=0.99, run_coco=False))["tt100k"]
    assert t["rec_overall"] == 0.0 and math.isnan(t["acc_overall"]) and math.isnan(t["f1_overall"])


def test_crowd_boxes_are_ignored():
    # Detection 0 matches the normal box; detection 1 overlaps only the crowd box -> ignored (-2);
    # detection 2 overlaps nothing -> FP (-1).
    det_match, gt_matched = match_tt100k_image(
        det_boxes=torch.tensor([[0, 0, 10, 10], [50, 50, 70, 70], [80, 80, 90, 90]]).numpy(),
        det_scores=torch.tensor([0.9, 0.8, 0.7]).numpy(),
        det_classes=torch.tensor([0, 0, 0]).numpy(),
        gt_boxes=torch.tensor([[0, 0, 10, 10], [50, 50, 70, 70]]).numpy(),
        gt_classes=torch.tensor([0, 0]).numpy(),
        gt_crowd=torch.tensor([False, True]).numpy(),
        iou_threshold=0.5,
    )
    assert det_match.tolist() == [0, -2, -1] and gt_matched.tolist() == [True, False]
