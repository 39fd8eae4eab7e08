"""Where a detector errs: precision-recall curves from COCOeval's precision array, and a confusion matrix that
counts class confusions and confusions with the background.

Predictions are COCO result records (``coco_instances_results.json``: ``image_id``, ``category_id`` as the
dataset's id, ``bbox`` XYWH, ``score``); ground truth is a registered dataset.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from net_detr2.data import DatasetCatalog, MetadataCatalog
from net_detr2.structures import Boxes, BoxMode, Instances, pairwise_iou

from .coco_evaluation import convert_to_coco_dict, evaluate_predictions_on_coco, load_coco_gt

__all__ = [
    "add_results_arguments",
    "results_from_arguments",
    "load_coco_results",
    "results_to_instances",
    "precision_recall",
    "confusion_matrix",
]


def add_results_arguments(parser) -> None:
    """The command-line arguments of a tool that reads an evaluation's results: ``--input``, ``--dataset`` and
    ``--config-file`` (read by `results_from_arguments`)."""
    parser.add_argument("--input", required=True, help="coco_instances_results.json of an evaluation")
    parser.add_argument("--dataset", required=True, help="the registered dataset it was evaluated on")
    parser.add_argument("--config-file", default="", help="config to load first (it may register the dataset)")


def results_from_arguments(parser, args) -> list[dict]:
    """Load ``args.config_file`` (it may register the dataset), check that ``args.dataset`` is registered and
    read ``args.input`` (`load_coco_results`); a failure ends the tool through ``parser.error`` with the reason."""
    from net_detr2.config import LazyConfig

    if args.config_file:
        LazyConfig.load(args.config_file)
    if args.dataset not in DatasetCatalog:
        parser.error(
            f"dataset {args.dataset!r} is not registered; registered: {', '.join(sorted(DatasetCatalog.list()))}"
        )
    try:
        return load_coco_results(args.input)
    except (OSError, ValueError) as e:
        parser.error(str(e))


def load_coco_results(path: str) -> list[dict]:
    """Read a ``coco_instances_results.json``; every record is checked (keys, four finite box numbers, a
    finite score) and a bad one raises ``ValueError`` naming the file and its index."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"results file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            records = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a list of COCO result records, got {type(records).__name__}")
    for i, r in enumerate(records):
        missing = {"image_id", "category_id", "bbox", "score"} - set(r) if isinstance(r, dict) else {"a mapping"}
        if missing:
            raise ValueError(f"{path}: record {i} lacks {sorted(missing)}: {r!r}")
        box = r["bbox"]
        ok_box = isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)
        if not ok_box or not all(math.isfinite(v) for v in box) or not math.isfinite(float(r["score"])):
            raise ValueError(f"{path}: record {i} has a bad bbox or score (four finite numbers, XYWH): {r!r}")
    return records


def _dataset_to_contiguous(dataset_name: str) -> dict[int, int]:
    """Dataset category id -> contiguous class id (empty: the ids are contiguous already)."""
    metadata = MetadataCatalog.get(dataset_name)
    if metadata.get("thing_dataset_id_to_contiguous_id") is None and metadata.get("json_file"):
        DatasetCatalog.get(dataset_name)  # loading a COCO json records the mapping in the metadata
    return dict(metadata.get("thing_dataset_id_to_contiguous_id") or {})


def results_to_instances(records: Sequence[dict], dataset_name: str) -> dict[int | str, Instances]:
    """``{image_id: Instances(pred_boxes XYXY, scores, pred_classes contiguous)}`` of the records."""
    to_contiguous = _dataset_to_contiguous(dataset_name)
    by_image: dict = defaultdict(list)
    for r in records:
        by_image[r["image_id"]].append(r)
    out = {}
    for image_id, recs in by_image.items():
        boxes = torch.tensor([r["bbox"] for r in recs], dtype=torch.float32).reshape(-1, 4)
        inst = Instances((0, 0))
        inst.pred_boxes = Boxes(BoxMode.convert(boxes, BoxMode.XYWH_ABS, BoxMode.XYXY_ABS))
        inst.scores = torch.tensor([float(r["score"]) for r in recs])
        inst.pred_classes = torch.tensor(
            [to_contiguous.get(int(r["category_id"]), int(r["category_id"])) for r in recs], dtype=torch.int64
        )
        out[image_id] = inst
    return out


def precision_recall(records: Sequence[dict], dataset_name: str) -> dict:
    """COCOeval of the records, summarised for plotting.

    Returns ``{"recall": (R,), "iou": (T,), "classes": [names], "precision": (T, R, K)}`` (area "all", the
    largest maxDets; -1 where a class has no ground truth) and ``"ap"`` / ``"ap50"``: ``{name: AP x100}``
    plus ``"all classes"`` (the mean over classes with ground truth, COCO's AP and AP50).
    """
    metadata = MetadataCatalog.get(dataset_name)
    json_file = metadata.get("json_file")
    coco_gt = load_coco_gt(json_file if json_file else convert_to_coco_dict(dataset_name))
    coco_eval = evaluate_predictions_on_coco(coco_gt, list(records))
    if coco_eval is None:
        raise ValueError(f"no predictions to analyse for {dataset_name!r}")
    p = coco_eval.params
    precision = coco_eval.eval["precision"][:, :, :, list(p.areaRngLbl).index("all"), -1]  # (T, R, K)
    names = list(metadata.get("thing_classes") or [str(c) for c in p.catIds])
    to_contiguous = _dataset_to_contiguous(dataset_name)
    order = [to_contiguous.get(c, i) for i, c in enumerate(p.catIds)]  # precision's class axis follows catIds
    class_names = [names[k] if k < len(names) else str(p.catIds[i]) for i, k in enumerate(order)]

    def ap(pr: np.ndarray) -> float:
        valid = pr[pr > -1]
        return float(valid.mean() * 100) if valid.size else float("nan")

    iou50 = int(np.argmin(np.abs(p.iouThrs - 0.5)))
    result = {"recall": np.asarray(p.recThrs), "iou": np.asarray(p.iouThrs), "classes": class_names}
    result["precision"] = precision
    result["ap"] = {n: ap(precision[:, :, k]) for k, n in enumerate(class_names)}
    result["ap50"] = {n: ap(precision[iou50, :, k]) for k, n in enumerate(class_names)}
    result["ap"]["all classes"] = ap(precision)
    result["ap50"]["all classes"] = ap(precision[iou50])
    return result


def _greedy_matches(iou: np.ndarray, threshold: float) -> np.ndarray:
    """For predictions in descending score order (rows), the ground truth each takes: the unmatched one of
    highest IoU >= ``threshold``, or -1. ``iou``: (P, G). COCOeval's greedy rule, without the class."""
    taken = np.zeros(iou.shape[1], dtype=bool)
    match = np.full(iou.shape[0], -1, dtype=np.int64)
    for i in range(iou.shape[0]):  # greedy: each choice depends on the previous ones
        candidates = np.where(taken, -1.0, iou[i])
        j = int(candidates.argmax()) if candidates.size else -1
        if j >= 0 and candidates[j] >= threshold:
            match[i], taken[j] = j, True
    return match


def confusion_matrix(
    predictions: dict, dataset_name: str, iou_threshold: float = 0.5, score_threshold: float = 0.5
) -> tuple[np.ndarray, list[str]]:
    """A (K + 1) x (K + 1) matrix: row = ground-truth class, column = predicted class, the last row and column
    being "background".

    Per image, predictions scoring >= ``score_threshold`` are matched to ground-truth boxes (crowd boxes left
    out) regardless of class, greedily in score order at IoU >= ``iou_threshold``. A match counts at
    [its ground-truth class, its predicted class] (the diagonal: correct; elsewhere: class confusions); an
    unmatched prediction at [background, predicted class] (a false positive on background); an unmatched
    ground-truth box at [its class, background] (missed).

    Args:
        predictions: ``{image_id: Instances}`` (`results_to_instances`); images absent from it have none.
    """
    metadata = MetadataCatalog.get(dataset_name)
    names = list(metadata.get("thing_classes") or [])
    dicts = DatasetCatalog.get(dataset_name)
    if not names:
        top = max((a["category_id"] for d in dicts for a in d.get("annotations", [])), default=-1)
        names = [str(i) for i in range(top + 1)]
    k = len(names)
    matrix = np.zeros((k + 1, k + 1), dtype=np.int64)
    for d in dicts:
        annos = [a for a in d.get("annotations", []) if not a.get("iscrowd", 0)]
        gt_boxes = torch.tensor(
            [BoxMode.convert(list(a["bbox"]), BoxMode(a["bbox_mode"]), BoxMode.XYXY_ABS) for a in annos],
            dtype=torch.float32,
        ).reshape(-1, 4)
        gt_classes = np.asarray([int(a["category_id"]) for a in annos], dtype=np.int64)
        inst = predictions.get(d.get("image_id"))
        if inst is not None and len(inst):
            keep = inst.scores >= score_threshold
            order = torch.argsort(inst.scores[keep], descending=True)
            pred_boxes = inst.pred_boxes.tensor[keep][order]
            pred_classes = inst.pred_classes[keep][order].numpy()
        else:
            pred_boxes, pred_classes = torch.zeros(0, 4), np.zeros(0, dtype=np.int64)
        if ((pred_classes < 0) | (pred_classes >= k)).any():
            raise ValueError(f"{d.get('file_name', d.get('image_id'))}: a predicted class is outside 0..{k - 1}")
        iou = pairwise_iou(Boxes(pred_boxes), Boxes(gt_boxes)).numpy()
        match = _greedy_matches(iou, iou_threshold)
        matched = match >= 0
        np.add.at(matrix, (gt_classes[match[matched]], pred_classes[matched]), 1)
        np.add.at(matrix, (np.full((~matched).sum(), k), pred_classes[~matched]), 1)
        missed = np.ones(len(gt_classes), dtype=bool)
        missed[match[matched]] = False
        np.add.at(matrix, (gt_classes[missed], np.full(missed.sum(), k)), 1)
    return matrix, names + ["background"]
