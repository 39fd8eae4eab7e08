"""Evaluators refuse NaN/Inf predicted boxes or scores, naming the image (they used to count as hits)."""

from __future__ import annotations

import uuid

import pytest
import torch

from net_detr2.data.catalog import DatasetCatalog, MetadataCatalog
from net_detr2.evaluation import (
    COCOEvaluator,
    NonFinitePredictionError,
    PascalVOCDetectionEvaluator,
    TT100KEvaluator,
)
from net_detr2.structures import Boxes, BoxMode, Instances

DICTS = [
    {
        "file_name": f"/data/{i}.jpg",
        "image_id": i,
        "height": 100,
        "width": 100,
        "annotations": [{"bbox": [10.0, 10.0, 50.0, 50.0], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0}],
    }
    for i in (1, 2)
]


@pytest.fixture
def dataset():
    name = f"nonfinite_{uuid.uuid4().hex[:8]}"
    DatasetCatalog.register(name, lambda: [dict(d) for d in DICTS])
    MetadataCatalog.get(name).set(thing_classes=["thing"])
    yield name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def _outputs(box: list[float], score: float) -> list[dict]:
    """Image 1: a perfect detection; image 2: ``box`` with ``score`` plus a perfect detection."""
    outs = []
    for extra in ([], [(box, score)]):
        rows = [([10.0, 10.0, 50.0, 50.0], 0.9), *extra]
        inst = Instances((100, 100))
        inst.pred_boxes = Boxes(torch.tensor([r[0] for r in rows]))
        inst.scores = torch.tensor([r[1] for r in rows])
        inst.pred_classes = torch.zeros(len(rows), dtype=torch.int64)
        outs.append({"instances": inst})
    return outs


EVALUATORS = {
    "COCOEvaluator": lambda name: COCOEvaluator(name, distributed=False),
    "PascalVOCDetectionEvaluator": lambda name: PascalVOCDetectionEvaluator(name, distributed=False),
    "TT100KEvaluator": lambda name: TT100KEvaluator(name, distributed=False, run_coco=False),
}


@pytest.mark.parametrize("kind", list(EVALUATORS))
@pytest.mark.parametrize(
    "box, score",
    [
        ([10.0, 10.0, float("nan"), 50.0], 0.8),
        ([float("-inf"), 10.0, 50.0, 50.0], 0.8),
        ([10.0, 10.0, 50.0, 50.0], float("nan")),
        ([10.0, 10.0, 50.0, 50.0], float("inf")),
    ],
)
def test_non_finite_predictions_name_the_image(dataset, kind, box, score):
    evaluator = EVALUATORS[kind](dataset)
    evaluator.reset()
    with pytest.raises(NonFinitePredictionError) as e:
        evaluator.process([dict(d) for d in DICTS], _outputs(box, score))
    msg = str(e.value)
    assert f"{kind}('{dataset}')" in msg
    assert "1 of 2 detections with NaN/Inf" in msg and "image /data/2.jpg (image_id 2)" in msg


@pytest.mark.parametrize("kind", list(EVALUATORS))
def test_finite_predictions_still_evaluate(dataset, kind):
    evaluator = EVALUATORS[kind](dataset)
    evaluator.reset()
    evaluator.process([dict(d) for d in DICTS], _outputs([60.0, 60.0, 90.0, 90.0], 0.5))  # one false positive
    results = evaluator.evaluate()
    assert results  # the check lets ordinary predictions through to the metrics
    if kind == "COCOEvaluator":
        assert results["bbox"]["AP50"] == pytest.approx(100.0)  # the false positive scores below both hits
