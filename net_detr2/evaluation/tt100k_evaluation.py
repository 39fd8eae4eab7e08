"""Tsinghua-Tencent 100K accuracy / recall / F1 by object size (EFPN, Table II and VI).

Protocol (Zhu et al. 2016, as used by EFPN), at a fixed score threshold:
  * only detections with ``score >= score_threshold`` are considered;
  * per image and class, detections (highest score first) are matched greedily to the
    still-unmatched ground-truth box of the same class with the largest IoU, if that IoU is
    ``>= iou_threshold``;
  * objects fall in size bins by **area** (EFPN Sec. IV-A): small < 32², medium 32²..96²,
    large >= 96², overall = all (COCO's bin edges: an area of exactly 32² is medium);
  * a matched detection is a true positive of its *ground truth's* bin; an unmatched detection
    is a false positive of *its own* bin (so each bin is scored as if the other bins' objects
    were not there — the convention of the TT100K evaluation code);
  * ``accuracy = TP / (TP + FP)`` (the papers' "accuracy" is precision),
    ``recall = TP / #GT``, ``F1 = 2·acc·rec / (acc + rec)``, all x100; undefined ratios are NaN;
  * crowd boxes (``iscrowd``) are neither counted nor penalised: a detection overlapping one
    (IoU >= threshold) after failing to match is ignored.

The evaluator also runs :class:`COCOEvaluator` on the same predictions (AP/AR-style metrics the
paper reports in addition), so its results are ``{"bbox": {...COCO...}, "tt100k": {...}}``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict

import numpy as np
from tabulate import tabulate

import net_detr2.data  # noqa: F401  (importing the package registers the builtin datasets)
from net_detr2.data.catalog import DatasetCatalog
from net_detr2.structures import BoxMode
from net_detr2.utils import comm

from .coco_evaluation import COCOEvaluator
from .evaluator import DatasetEvaluator, check_finite_predictions
from .pascal_voc_evaluation import box_iou_np

__all__ = ["TT100KEvaluator", "match_tt100k_image", "size_bins", "SIZE_BINS"]

logger = logging.getLogger(__name__)

# name -> [min area, max area)
SIZE_BINS = OrderedDict(
    small=(0.0, 32.0**2), medium=(32.0**2, 96.0**2), large=(96.0**2, float("inf")), overall=(0.0, float("inf"))
)


def size_bins(boxes: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks (N,) of XYXY boxes in each of ``SIZE_BINS`` by area."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return {name: (area >= lo) & (area < hi) for name, (lo, hi) in SIZE_BINS.items()}


def match_tt100k_image(
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    det_classes: np.ndarray,
    gt_boxes: np.ndarray,
    gt_classes: np.ndarray,
    gt_crowd: np.ndarray | None,
    iou_threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy same-class matching of one image's (already score-filtered) detections.

    Args:
        det_boxes (D, 4), det_scores (D,), det_classes (D,): detections, XYXY.
        gt_boxes (G, 4), gt_classes (G,), gt_crowd (G,) bool or None: ground truth.
        iou_threshold: minimum IoU for a match.
    Returns:
        ``det_match`` (D,) int: index of the matched GT, -1 unmatched (a false positive),
        -2 ignored (overlaps a crowd box); ``gt_matched`` (G,) bool.
    """
    D, G = len(det_boxes), len(gt_boxes)
    det_match = np.full(D, -1, dtype=np.int64)
    gt_matched = np.zeros(G, dtype=bool)
    if D == 0 or G == 0:
        return det_match, gt_matched
    crowd = np.zeros(G, dtype=bool) if gt_crowd is None else np.asarray(gt_crowd, dtype=bool)
    ious = box_iou_np(det_boxes, gt_boxes)
    ious[np.asarray(det_classes)[:, None] != np.asarray(gt_classes)[None, :]] = -1.0  # other classes never match
    for k in np.argsort(-np.asarray(det_scores), kind="stable"):
        cand = np.where(~gt_matched & ~crowd, ious[k], -1.0)
        j = int(cand.argmax())
        if cand[j] >= iou_threshold:
            det_match[k] = j
            gt_matched[j] = True
        elif crowd.any() and ious[k][crowd].max() >= iou_threshold:
            det_match[k] = -2
    return det_match, gt_matched


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) * 100.0 if den > 0 else float("nan")


def _f1(p: float, r: float) -> float:
    if np.isnan(p) or np.isnan(r):
        return float("nan")
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


class TT100KEvaluator(DatasetEvaluator):
    """Accuracy/recall/F1 per size bin at a score threshold, plus COCO box metrics.

    Results (main process)::

        {"bbox": {AP, AP50, ...},                      # from COCOEvaluator
         "tt100k": {"acc_small", "rec_small", "f1_small", ..., "acc_overall", "rec_overall",
                    "f1_overall", "tp_small", "fp_small", "gt_small", ...}}
    """

    def __init__(
        self,
        dataset_name: str,
        score_threshold: float = 0.5,
        iou_threshold: float = 0.5,
        distributed: bool = True,
        output_dir: str | None = None,
        run_coco: bool = True,
    ):
        """
        Args:
            dataset_name: a registered dataset (its dicts are the ground truth).
            score_threshold: detections below it are discarded for accuracy/recall.
            iou_threshold: IoU needed for a correct detection.
            distributed: gather predictions from all ranks.
            output_dir: passed to the COCO evaluator.
            run_coco: also compute COCO metrics (``"bbox"`` task).
        """
        self._dataset_name = dataset_name
        self._score_threshold = float(score_threshold)
        self._iou_threshold = float(iou_threshold)
        self._distributed = distributed
        self._coco = COCOEvaluator(dataset_name, distributed=distributed, output_dir=output_dir) if run_coco else None
        self.reset()

    def reset(self) -> None:
        # image_id -> (boxes (K,4), scores (K,), classes (K,)) of detections above the threshold
        self._predictions: dict = {}
        if self._coco is not None:
            self._coco.reset()

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        if self._coco is not None:
            self._coco.process(inputs, outputs)
        for inp, out in zip(inputs, outputs):
            inst = out["instances"].to("cpu")
            check_finite_predictions(inst, inp, f"TT100KEvaluator({self._dataset_name!r})")
            scores = inst.scores.detach().double().numpy() if len(inst) else np.zeros(0)
            keep = scores >= self._score_threshold
            boxes = inst.pred_boxes.tensor.detach().double().numpy()[keep] if len(inst) else np.zeros((0, 4))
            classes = inst.pred_classes.detach().numpy()[keep] if len(inst) else np.zeros(0, dtype=np.int64)
            self._predictions[inp["image_id"]] = (boxes.reshape(-1, 4), scores[keep], classes)

    def evaluate(self) -> dict | None:
        results = OrderedDict()
        if self._coco is not None:
            coco_res = self._coco.evaluate()
            if coco_res:
                results.update(coco_res)
        if self._distributed:
            parts = comm.gather(self._predictions, dst=0)
            if not comm.is_main_process():
                return {}
        else:
            parts = [self._predictions]
        predictions = {}
        for p in parts:
            predictions.update(p)
        if not predictions:
            logger.warning("[TT100KEvaluator] Did not receive any predictions.")
        results["tt100k"] = self._compute(predictions)
        return results

    def _compute(self, predictions: dict) -> OrderedDict:
        counts = {name: defaultdict(int) for name in SIZE_BINS}
        empty_det = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))
        seen = set()
        for idx, d in enumerate(DatasetCatalog.get(self._dataset_name)):
            image_id = d.get("image_id", idx)
            seen.add(image_id)
            annos = d.get("annotations", [])
            gt_boxes = np.asarray(
                [
                    BoxMode.convert(list(map(float, a["bbox"])), BoxMode(a["bbox_mode"]), BoxMode.XYXY_ABS)
                    for a in annos
                ],
                dtype=np.float64,
            ).reshape(-1, 4)
            gt_classes = np.asarray([int(a["category_id"]) for a in annos], dtype=np.int64)
            gt_crowd = np.asarray([bool(a.get("iscrowd", 0)) for a in annos], dtype=bool)
            det_boxes, det_scores, det_classes = predictions.get(image_id, empty_det)
            det_match, gt_matched = match_tt100k_image(
                det_boxes, det_scores, det_classes, gt_boxes, gt_classes, gt_crowd, self._iou_threshold
            )
            gt_bins, det_bins = size_bins(gt_boxes), size_bins(det_boxes)
            for name in SIZE_BINS:
                counts[name]["gt"] += int((gt_bins[name] & ~gt_crowd).sum())
                counts[name]["tp"] += int((gt_bins[name] & gt_matched).sum())
                counts[name]["fp"] += int((det_bins[name] & (det_match == -1)).sum())
        missing = [k for k in predictions if k not in seen]
        if missing:
            logger.warning(
                "[TT100KEvaluator] %d predicted image ids are not in %r (e.g. %r); ignored",
                len(missing),
                self._dataset_name,
                missing[0],
            )

        res = OrderedDict()
        rows = []
        for name in SIZE_BINS:
            c = counts[name]
            acc = _ratio(c["tp"], c["tp"] + c["fp"])
            rec = _ratio(c["tp"], c["gt"])
            f1 = _f1(acc, rec)
            res[f"acc_{name}"], res[f"rec_{name}"], res[f"f1_{name}"] = acc, rec, f1
            rows.append((name, acc, rec, f1, c["tp"], c["fp"], c["gt"]))
        for name in SIZE_BINS:
            for k in ("tp", "fp", "gt"):
                res[f"{k}_{name}"] = float(counts[name][k])
        logger.info(
            "TT100K accuracy/recall/F1 on %s (score >= %.2f, IoU >= %.2f):\n%s",
            self._dataset_name,
            self._score_threshold,
            self._iou_threshold,
            tabulate(
                rows,
                headers=["size", "Acc.", "Rec.", "F1", "TP", "FP", "GT"],
                tablefmt="pipe",
                floatfmt=".1f",
                numalign="left",
            ),
        )
        return res
