"""COCOEvaluator and inference_on_dataset on a tiny registered COCO-style dataset."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import uuid

import numpy as np
import pytest
import torch
from torch import nn

from net_detr2.data.catalog import DatasetCatalog, MetadataCatalog
from net_detr2.evaluation import (
    COCOEvaluator,
    DatasetEvaluator,
    convert_to_coco_dict,
    flatten_results_dict,
    inference_on_dataset,
    print_csv_format,
)
from net_detr2.structures import Boxes, BoxMode, Instances
from net_detr2.utils import comm

# Dataset category ids 1 and 3 (non-contiguous on purpose) -> contiguous 0 and 1.
CLASSES = ["circle", "square"]
ID_MAP = {1: 0, 3: 1}


def _make_dicts():
    # Boxes in XYWH_ABS, sizes chosen to populate the small (<32^2), medium and large COCO bins.
    imgs = [
        (101, [([10, 10, 20, 20], 0), ([50, 40, 60, 50], 1)]),
        (102, [([5, 5, 120, 110], 1), ([150, 10, 25, 25], 0)]),
        (103, [([30, 30, 50, 45], 0), ([100, 100, 12, 18], 1), ([0, 150, 40, 40], 0)]),
        (104, [([60, 60, 70, 70], 1)]),
    ]
    dicts = []
    for image_id, annos in imgs:
        dicts.append(
            {
                "file_name": f"img_{image_id}.jpg",
                "image_id": image_id,
                "height": 200,
                "width": 200,
                "annotations": [
                    {"bbox": b, "bbox_mode": BoxMode.XYWH_ABS, "category_id": c, "iscrowd": 0} for b, c in annos
                ],
            }
        )
    return dicts


@pytest.fixture
def tiny_coco():
    name = f"tiny_coco_{uuid.uuid4().hex[:8]}"
    dicts = _make_dicts()
    DatasetCatalog.register(name, lambda: copy.deepcopy(dicts))
    MetadataCatalog.get(name).set(thing_classes=CLASSES, thing_dataset_id_to_contiguous_id=ID_MAP)
    yield name, dicts
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def _gt_outputs(dicts, rng=None, jitter=0.0, drop=0.0):
    """Model-like outputs built from the ground truth (optionally perturbed)."""
    inputs, outputs = [], []
    for d in dicts:
        boxes, classes = [], []
        for a in d["annotations"]:
            if rng is not None and rng.random() < drop:
                continue
            x0, y0, x1, y1 = BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS)
            if rng is not None:
                w, h = x1 - x0, y1 - y0
                x0, x1 = x0 + rng.normal() * jitter * w, x1 + rng.normal() * jitter * w
                y0, y1 = y0 + rng.normal() * jitter * h, y1 + rng.normal() * jitter * h
            boxes.append([x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)])
            classes.append(a["category_id"])
        if rng is not None:  # a false positive per image
            boxes.append([rng.uniform(0, 100), rng.uniform(0, 100), rng.uniform(110, 200), rng.uniform(110, 200)])
            classes.append(int(rng.integers(0, 2)))
        n = len(boxes)
        inst = Instances((d["height"], d["width"]))
        inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        inst.scores = torch.ones(n) if rng is None else torch.tensor(rng.uniform(0.05, 1.0, n), dtype=torch.float32)
        inst.pred_classes = torch.tensor(classes, dtype=torch.int64)
        inputs.append({"image_id": d["image_id"], "height": d["height"], "width": d["width"]})
        outputs.append({"instances": inst})
    return inputs, outputs


def _pycocotools_stats(gt_dict, results):
    return _pycocotools_eval(gt_dict, results).stats[:6] * 100


def _pycocotools_eval(gt_dict, results):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(gt_dict)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def test_convert_to_coco_dict_maps_ids_and_boxes(tiny_coco):
    name, dicts = tiny_coco
    coco = convert_to_coco_dict(name)
    assert coco["categories"] == [{"id": 1, "name": "circle"}, {"id": 3, "name": "square"}]
    assert [im["id"] for im in coco["images"]] == [101, 102, 103, 104]
    first = coco["annotations"][0]
    assert first["bbox"] == [10, 10, 20, 20] and first["area"] == 400 and first["category_id"] == 1
    assert coco["annotations"][1]["category_id"] == 3
    assert [a["id"] for a in coco["annotations"]] == list(range(1, 9))


def test_ground_truth_as_predictions_gives_ap_100(tiny_coco, tmp_path):
    name, dicts = tiny_coco
    ev = COCOEvaluator(name, output_dir=str(tmp_path))
    ev.reset()
    inputs, outputs = _gt_outputs(dicts)
    ev.process(inputs, outputs)
    res = ev.evaluate()["bbox"]
    for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AP-circle", "AP-square"):
        assert res[k] == pytest.approx(100.0), k
    written = json.loads((tmp_path / "coco_instances_results.json").read_text())
    assert len(written) == 8
    assert {r["category_id"] for r in written} == {1, 3}  # mapped back to dataset ids
    assert written[0]["bbox"] == pytest.approx([10, 10, 20, 20])
    assert (tmp_path / f"{name}_coco_format.json").is_file()


def test_perturbed_predictions_match_pycocotools(tiny_coco, tmp_path):
    name, dicts = tiny_coco
    rng = np.random.default_rng(0)
    inputs, outputs = _gt_outputs(dicts, rng=rng, jitter=0.08, drop=0.2)
    ev = COCOEvaluator(name, output_dir=str(tmp_path))
    ev.process(inputs, outputs)
    res = ev.evaluate()["bbox"]

    # Independent path: build the results json by hand, evaluate with pycocotools directly.
    inv = {v: k for k, v in ID_MAP.items()}
    results = []
    for inp, out in zip(inputs, outputs):
        inst = out["instances"]
        for b, s, c in zip(inst.pred_boxes.tensor.tolist(), inst.scores.tolist(), inst.pred_classes.tolist()):
            results.append(
                {
                    "image_id": inp["image_id"],
                    "category_id": inv[c],
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                    "score": s,
                }
            )
    gt_dict = json.loads((tmp_path / f"{name}_coco_format.json").read_text())
    expected = _pycocotools_stats(gt_dict, results)
    got = [res[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert 0 < res["AP"] < 100
    # every number of pycocotools' summary, read from its arrays by ap_at / ar_at
    from net_detr2.evaluation.coco_evaluation import ap_at, ar_at

    ev = _pycocotools_eval(gt_dict, results)
    areas = ("small", "medium", "large")
    ours = [ap_at(ev), ap_at(ev, 0.5), ap_at(ev, 0.75), *(ap_at(ev, area=a) for a in areas)]
    ours += [ar_at(ev, max_dets=1), ar_at(ev, max_dets=10), ar_at(ev), *(ar_at(ev, area=a) for a in areas)]
    np.testing.assert_allclose(ours, ev.stats, rtol=0, atol=1e-12)
    assert 0 < ar_at(ev, 0.5) <= 1 and len(set(ours)) > 4
    with pytest.raises(ValueError, match=r"IoU threshold 0\.52 is not one of the evaluated thresholds"):
        ar_at(ev, 0.52)


def test_json_file_in_metadata_is_used(tiny_coco, tmp_path):
    name, dicts = tiny_coco
    gt = convert_to_coco_dict(name)
    # Make one GT a crowd box in the json only: the evaluator must read the json, not the dicts.
    gt["annotations"][0]["iscrowd"] = 1
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    name2 = name + "_json"
    DatasetCatalog.register(name2, lambda: copy.deepcopy(dicts))
    MetadataCatalog.get(name2).set(thing_classes=CLASSES, thing_dataset_id_to_contiguous_id=ID_MAP, json_file=str(path))
    try:
        inputs, outputs = _gt_outputs(dicts)
        ev = COCOEvaluator(name2, output_dir=None)
        ev.process(inputs, outputs)
        res = ev.evaluate()["bbox"]
        # The prediction on the crowd box is ignored, every other one is a TP: AP stays 100.
        assert res["AP"] == pytest.approx(100.0)
        assert ev._coco_api.dataset["annotations"][0]["iscrowd"] == 1
    finally:
        DatasetCatalog.remove(name2)
        MetadataCatalog.remove(name2)


def test_no_predictions_gives_nan_not_crash(tiny_coco, caplog):
    name, dicts = tiny_coco
    ev = COCOEvaluator(name)
    inputs, outputs = _gt_outputs(dicts)
    empty = [{"instances": o["instances"][torch.zeros(len(o["instances"]), dtype=torch.bool)]} for o in outputs]
    ev.process(inputs, empty)
    res = ev.evaluate()
    assert set(res["bbox"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    assert all(math.isnan(v) for v in res["bbox"].values())
    ev.reset()
    res = ev.evaluate()  # nothing processed at all
    assert math.isnan(res["bbox"]["AP"])
    assert "No predictions" in caplog.text or "Did not receive" in caplog.text


def test_bad_class_id_and_task_errors(tiny_coco):
    name, dicts = tiny_coco
    with pytest.raises(ValueError, match="segm"):
        COCOEvaluator(name, tasks=("bbox", "segm"))
    ev = COCOEvaluator(name)
    inputs, outputs = _gt_outputs(dicts[:1])
    outputs[0]["instances"].pred_classes[0] = 7
    ev.process(inputs, outputs)
    with pytest.raises(ValueError, match="predicted class 7"):
        ev.evaluate()


# ---------------------------------------------------------------------------- inference loop
class _GTModel(nn.Module):
    """Returns the ground truth of the image it is given (looked up by image_id)."""

    def __init__(self, dicts):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self._by_id = {d["image_id"]: d for d in dicts}
        self.seen_training_flags, self.seen_grad_flags = [], []

    def forward(self, batch):
        self.seen_training_flags.append(self.training)
        self.seen_grad_flags.append(torch.is_grad_enabled())
        _, outputs = _gt_outputs([self._by_id[b["image_id"]] for b in batch])
        return outputs


def _loader(dicts, batch_size=1):
    items = [{"image_id": d["image_id"], "height": d["height"], "width": d["width"]} for d in dicts]
    return [items[i : i + batch_size] for i in range(0, len(items), batch_size)]


class _CountingEvaluator(DatasetEvaluator):
    def reset(self):
        self.n = 0

    def process(self, inputs, outputs):
        self.n += len(inputs)

    def evaluate(self):
        return {"count": {"images": float(self.n)}}


def test_inference_on_dataset_returns_evaluator_results(tiny_coco):
    name, dicts = tiny_coco
    model = _GTModel(dicts)
    model.train()
    res = inference_on_dataset(model, _loader(dicts, 2), [COCOEvaluator(name), _CountingEvaluator()])
    assert res["bbox"]["AP"] == pytest.approx(100.0)
    assert res["count"] == {"images": 4.0}
    assert model.seen_training_flags == [False, False] and model.seen_grad_flags == [False, False]
    assert model.training  # restored
    assert inference_on_dataset(model, _loader(dicts), None) == {}


def test_results_gathered_across_two_simulated_ranks(tiny_coco, monkeypatch):
    name, dicts = tiny_coco
    model = _GTModel(dicts)
    # "Rank 1" evaluates the second half of the images on its own.
    other = COCOEvaluator(name)
    for batch in _loader(dicts[2:]):
        other.process(batch, model(batch))

    # Alone, rank 0's half misses the other half's ground truth: AP < 100.
    alone = inference_on_dataset(model, _loader(dicts[:2]), COCOEvaluator(name, distributed=False))
    assert alone["bbox"]["AP"] < 90

    gathered_calls = []

    def fake_gather(data, dst=0, group=None):
        gathered_calls.append(len(data))
        return [data, other._predictions]

    monkeypatch.setattr(comm, "gather", fake_gather)
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    monkeypatch.setattr(comm, "synchronize", lambda: None)
    monkeypatch.setattr(comm, "is_main_process", lambda: True)
    merged = inference_on_dataset(model, _loader(dicts[:2]), COCOEvaluator(name, distributed=True))
    assert gathered_calls == [2]
    assert merged["bbox"]["AP"] == pytest.approx(100.0)

    # A non-main rank returns {} after contributing its predictions.
    monkeypatch.setattr(comm, "is_main_process", lambda: False)
    assert inference_on_dataset(model, _loader(dicts[:2]), COCOEvaluator(name, distributed=True)) == {}


def test_print_csv_format_and_flatten(caplog):
    import logging

    caplog.set_level(logging.INFO)
    res = {"bbox": {"AP": 50.0, "AP50": 75.25, "AP-cat": 3.0}}
    print_csv_format(res)
    assert "copypaste: AP,AP50" in caplog.text and "copypaste: 50.0000,75.2500" in caplog.text
    assert "AP-cat" not in caplog.text
    assert flatten_results_dict({"bbox": {"AP": 1.0, "x": {"y": 2}}}) == {"bbox/AP": 1.0, "bbox/x/y": 2}


# ---------------------------------------------------------------------------- the synthetic shapes dataset
def _shapes_outputs(dicts, rng=None):
    return _gt_outputs(dicts, rng=rng, jitter=0.1, drop=0.15)


def test_shapes_val_ground_truth_gives_ap_100_and_perturbed_matches_pycocotools(tmp_path):
    dicts = DatasetCatalog.get("shapes_val")
    meta = MetadataCatalog.get("shapes_val")
    ev = COCOEvaluator("shapes_val", output_dir=str(tmp_path))
    ev.process(*_gt_outputs(dicts))
    res = ev.evaluate()["bbox"]
    assert res["AP"] == pytest.approx(100.0) and res["APs"] == pytest.approx(100.0)
    assert all(res["AP-" + c] == pytest.approx(100.0) for c in meta.thing_classes)

    inputs, outputs = _shapes_outputs(dicts, rng=np.random.default_rng(1))
    ev.reset()
    ev.process(inputs, outputs)
    res = ev.evaluate()["bbox"]
    inv = {v: k for k, v in meta.thing_dataset_id_to_contiguous_id.items()}
    results = []
    for inp, out in zip(inputs, outputs):
        inst = out["instances"]
        for b, s, c in zip(inst.pred_boxes.tensor.tolist(), inst.scores.tolist(), inst.pred_classes.tolist()):
            results.append(
                {
                    "image_id": inp["image_id"],
                    "category_id": inv[c],
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                    "score": s,
                }
            )
    with open(meta.json_file) as f:
        gt_dict = json.load(f)
    expected = _pycocotools_stats(gt_dict, results)
    np.testing.assert_allclose(
        [res[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")], expected, rtol=0, atol=1e-9
    )
    assert 10 < res["AP"] < 95


def test_progress_log_skips_warmup_and_has_eta(tiny_coco, caplog):
    import logging

    name, dicts = tiny_coco
    caplog.set_level(logging.INFO, logger="net_detr2.evaluation.evaluator")
    # 4 batches -> 3 warm-up batches; with log_period_s=0 only the timed batch logs a progress line.
    inference_on_dataset(_GTModel(dicts), _loader(dicts), None, log_period_s=0.0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Inference done")]
    assert len(lines) == 1 and lines[0].startswith("Inference done 4/4") and "ETA=0:00:00" in lines[0]
    assert "s / img" in caplog.text and "Total inference time" in caplog.text


def test_max_dets_per_image_is_passed_to_cocoeval(tiny_coco, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    name, dicts = tiny_coco
    inputs, outputs = _gt_outputs(dicts, rng=np.random.default_rng(3), jitter=0.05, drop=0.0)
    with pytest.warns(UserWarning, match="use_fast_impl"):
        ev = COCOEvaluator(name, output_dir=str(tmp_path), max_dets_per_image=1, use_fast_impl=True)
    ev.process(inputs, outputs)
    res = ev.evaluate()["bbox"]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(tmp_path / f"{name}_coco_format.json"))
        dt = gt.loadRes(str(tmp_path / "coco_instances_results.json"))
        e = COCOeval(gt, dt, "bbox")
        e.params.maxDets = [1, 10]
        e.evaluate(), e.accumulate()
    # pycocotools' summarize() only knows maxDets=100: read AP off its precision array by hand
    # (all IoUs, all recall points, all classes, area "all", the maxDets=1 column; -1 = undefined).
    prec = e.eval["precision"][:, :, :, 0, 0]
    prec50 = e.eval["precision"][0, :, :, 0, 0]
    assert res["AP"] == pytest.approx(prec[prec > -1].mean() * 100, abs=1e-9)
    assert res["AP50"] == pytest.approx(prec50[prec50 > -1].mean() * 100, abs=1e-9)
    ev100 = COCOEvaluator(name, output_dir=str(tmp_path))
    ev100.process(inputs, outputs)
    assert ev100.evaluate()["bbox"]["AP"] != pytest.approx(
        res["AP"]
    )  # image 103 has two circles: 1 detection per class is not enough


# ---------------------------------------------------------------------------- extra metrics
def _attribute_dataset(tmp_path):
    """One class; A (visible 0.3) and B (0.95) in image 1, a tiny C (0.5) in image 2; as a COCO json."""
    from net_detr2.data.datasets import register_coco_instances

    anns = [
        ([10, 10, 40, 40], 1, 0.3),  # A
        ([100, 100, 40, 40], 1, 0.95),  # B
        ([20, 20, 10, 10], 2, 0.5),  # C (area 100)
    ]
    coco = {
        "images": [{"id": i, "file_name": f"{i}.jpg", "height": 200, "width": 200} for i in (1, 2)],
        "annotations": [
            {"id": k + 1, "image_id": im, "category_id": 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0, "visible": v}
            for k, (b, im, v) in enumerate(anns)
        ],
        "categories": [{"id": 1, "name": "circle"}],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(coco))
    name = f"attr_{uuid.uuid4().hex[:8]}"
    register_coco_instances(name, {}, str(path), str(tmp_path))
    DatasetCatalog.get(name)  # sets thing_classes / the id mapping
    return name, coco


def _attribute_predictions():
    """Score order: a tiny FP (img 2), B exact, a 30x30 FP (img 1), C exact, A shifted 4 px (IoU 0.818)."""
    per_image = {
        1: [([100, 100, 140, 140], 0.9), ([150, 10, 180, 40], 0.8), ([14, 10, 54, 50], 0.6)],
        2: [([160, 160, 168, 168], 0.95), ([20, 20, 30, 30], 0.7)],
    }
    inputs, outputs = [], []
    for image_id, dets in per_image.items():
        inst = Instances((200, 200))
        inst.pred_boxes = Boxes(torch.tensor([b for b, _ in dets], dtype=torch.float32))
        inst.scores = torch.tensor([s for _, s in dets])
        inst.pred_classes = torch.zeros(len(dets), dtype=torch.int64)
        inputs.append({"image_id": image_id})
        outputs.append({"instances": inst})
    return inputs, outputs


def test_extra_iou_area_and_ground_truth_slices_by_hand(tmp_path):
    """Hand-computed APs (101-point interpolation; A's detection is a true positive up to IoU 0.80 only):
    - APvis0_60 (A, C): B's detection is ignored (it matches B, outside the slice); at IoU <= 0.80 the
      order FP, FP, TP, TP gives precision 0.5 at every recall -> 50; at 0.85..0.95 A's detection is a
      FP: FP, FP, TP, FP -> 1/3 up to recall 0.5 (51 of 101 points) -> 16.83; mean (7 * 50 + 3 * 16.83) / 10.
    - APvis90_100 (B): FP, TP first -> precision 0.5 at recall 1 at every IoU -> 50.
    - APtiny (area <= 256, i.e. C): the tiny FP then C -> 50 (larger unmatched detections are not counted).
    - ARvis0_60: recall of A and C, averaged over the IoU thresholds.
    - AP90: from pycocotools' own precision array at IoU 0.9.
    """
    name, coco = _attribute_dataset(tmp_path)
    ev = COCOEvaluator(
        name,
        extra_iou_thresholds=[0.9],
        extra_area_ranges={"APtiny": [0, 256]},
        gt_slices={
            "APvis0_60": ["visible", 0.0, 0.6],
            "AP50vis0_60": ["visible", 0.0, 0.6, 0.5],
            "AP90vis0_60": ["visible", 0.0, 0.6, 0.9],
            "ARvis0_60": ["visible", 0.0, 0.6, None, "AR"],
            "APvis90_100": ["visible", 0.9, 1.01],
        },
    )
    ev.reset()
    ev.process(*_attribute_predictions())
    res = ev.evaluate()["bbox"]
    assert res["APvis0_60"] == pytest.approx((7 * 50 + 3 * 100 * 51 / 101 / 3) / 10)
    assert res["AP50vis0_60"] == pytest.approx(50.0) and res["AP90vis0_60"] == pytest.approx(100 * 51 / 101 / 3)
    # recall of A and C: both found up to IoU 0.80 (7 thresholds), then only C: (7 * 1 + 3 * 0.5) / 10
    assert res["ARvis0_60"] == pytest.approx(85.0)
    assert res["APvis90_100"] == pytest.approx(50.0)
    assert res["APtiny"] == pytest.approx(50.0)

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results = []
    for inp, out in zip(*_attribute_predictions()):
        for b, s in zip(out["instances"].pred_boxes.tensor.tolist(), out["instances"].scores.tolist()):
            results.append(
                {
                    "image_id": inp["image_id"],
                    "category_id": 1,
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                    "score": s,
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(coco)
        gt.createIndex()
        e = COCOeval(gt, gt.loadRes(results), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    p = e.eval["precision"][np.isclose(e.params.iouThrs, 0.9)][..., 0, -1]
    assert res["AP90"] == pytest.approx(100 * p[p > -1].mean())
    np.testing.assert_allclose([res[k] for k in ("AP", "AP50", "AP75", "APs", "APm")], e.stats[:5] * 100)
    assert math.isnan(res["APl"])  # no large object
    assert res["AP90"] < res["AP50"]


def test_extra_metric_options_are_checked(tmp_path):
    name, _ = _attribute_dataset(tmp_path)
    with pytest.raises(ValueError, match="0.93 is not one of COCO's IoU thresholds"):
        COCOEvaluator(name, extra_iou_thresholds=[0.93])
    with pytest.raises(ValueError, match="name 'AP-tiny' must be a new metric name"):
        COCOEvaluator(name, extra_area_ranges={"AP-tiny": [0, 256]})
    with pytest.raises(ValueError, match=r"gt_slices\['APv'\] IoU threshold 0.62 is not one of COCO's"):
        COCOEvaluator(name, gt_slices={"APv": ["visible", 0.0, 0.5, 0.62]})
    with pytest.raises(ValueError, match=r"gt_slices\['APv'\] = \['visible', 0.5\] is not of the form"):
        COCOEvaluator(name, gt_slices={"APv": ["visible", 0.5]})
    with pytest.raises(ValueError, match=r"gt_slices\['APv'\] reads 'XX'; expected 'AP' or 'AR'"):
        COCOEvaluator(name, gt_slices={"APv": ["visible", 0.0, 0.5, None, "XX"]})
    with pytest.raises(ValueError, match="low 0.9 >= high 0.1"):
        COCOEvaluator(name, gt_slices={"APv": ["visible", 0.9, 0.1]})
    ev = COCOEvaluator(name, gt_slices={"APocc": ["occluded", 0.0, 1.0]})
    ev.process(*_attribute_predictions())
    with pytest.raises(
        ValueError,
        match=r"gt_slices \['APocc'\] need the annotation attribute 'occluded', which annotation id 1 does not have",
    ):
        ev.evaluate()


def test_part_false_positives_by_hand(tmp_path):
    """Image 1 has a part at [10, 10, 10, 10]; of the detections scoring >= 0.3 (three), one lies on it."""
    from net_detr2.evaluation.coco_evaluation import part_false_positive_rate

    images = [{"id": 1, "parts": [[10, 10, 10, 10, 3]]}, {"id": 2, "parts": []}]
    results = [
        {"image_id": 1, "bbox": [10.5, 10, 10, 10], "score": 0.9},  # IoU 0.90 with the part
        {"image_id": 1, "bbox": [50, 50, 10, 10], "score": 0.8},
        {"image_id": 1, "bbox": [10, 10, 10, 10], "score": 0.2},  # below the threshold
        {"image_id": 2, "bbox": [10, 10, 10, 10], "score": 0.5},  # no part in image 2
    ]
    assert part_false_positive_rate(images, results, 0.3) == pytest.approx(100 / 3)
    assert part_false_positive_rate(images, results, 0.85) == pytest.approx(100.0)
    assert math.isnan(part_false_positive_rate(images, results, 0.95))
    name, _ = _attribute_dataset(tmp_path)  # its images list no parts
    ev = COCOEvaluator(name, part_false_positives=0.3)
    ev.process(*_attribute_predictions())
    with pytest.raises(ValueError, match="part_false_positives needs 'parts' in the COCO image entries"):
        ev.evaluate()
    with pytest.raises(ValueError, match="must be a score in"):
        COCOEvaluator(name, part_false_positives=3)
