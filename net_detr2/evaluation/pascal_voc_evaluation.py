"""PASCAL VOC detection AP (per class, at IoU 0.5 and averaged over IoU 0.5:0.95).

Protocol (the VOC devkit's ``VOCevaldet``):
  * per class, detections of all images are sorted by score (highest first); each one is matched
    to the ground-truth box of its image with the largest IoU; it is a true positive if that IoU is
    **strictly greater** than the threshold, the box is not ``difficult`` and not already taken;
    a second detection of the same box is a false positive; a detection whose best box is
    ``difficult`` is ignored (neither TP nor FP); difficult boxes do not count in the recall's
    denominator.
  * AP from the precision/recall curve either with the VOC2007 **11-point** metric (mean of the
    maximum precision at recall >= 0, 0.1, ..., 1; thresholds computed as i/10 like the devkit's
    ``0:0.1:1``) or as the **area under** the monotone (envelope) precision curve (VOC2010+).
    The default follows the dataset's ``year`` metadata: 2007 -> 11-point, else area.

Pixel convention: the devkit uses 1-based inclusive pixel boxes and adds 1 to widths/heights.
Our VOC loader (detectron2's convention) stores ``xmin - 1, ymin - 1, xmax, ymax`` as continuous
XYXY coordinates, and detectron2 writes predictions back with ``+1`` on xmin/ymin before the devkit
formula. Both shifts cancel: the devkit's ``(xmax - xmin + 1)`` of the file box equals ``x1 - x0``
in the loader frame, and likewise for intersections. So IoU is computed here directly on the
continuous loader-frame boxes, which gives exactly the devkit's numbers (unlike detectron2 we do not
round predictions to 0.1 px / scores to 3 decimals on the way).

Classes without any non-difficult ground truth have an undefined AP (NaN) and are left out of the means.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from collections.abc import Sequence

import numpy as np
from tabulate import tabulate

import net_detr2.data  # noqa: F401  (importing the package registers the builtin datasets)
from net_detr2.data.catalog import DatasetCatalog, MetadataCatalog
from net_detr2.structures import BoxMode
from net_detr2.utils import comm

from .evaluator import DatasetEvaluator, check_finite_predictions

__all__ = ["PascalVOCDetectionEvaluator", "voc_ap", "voc_match_class", "box_iou_np"]

logger = logging.getLogger(__name__)

IOU_THRESHOLDS = tuple(range(50, 100, 5))  # in percent: 0.50, 0.55, ..., 0.95


def voc_ap(rec: np.ndarray, prec: np.ndarray, use_07_metric: bool) -> float:
    """Average precision from a recall/precision curve (detections sorted by decreasing score).

    Args:
        rec, prec: (D,) cumulative recall and precision after each detection.
        use_07_metric: VOC2007 11-point metric if True, else the area under the precision envelope.
    """
    rec = np.asarray(rec, dtype=np.float64)
    prec = np.asarray(prec, dtype=np.float64)
    if use_07_metric:
        ap = 0.0
        for i in range(11):
            t = i / 10.0
            above = prec[rec >= t]
            ap += (above.max() if above.size else 0.0) / 11.0
        return float(ap)
    # Precision envelope: the best precision achievable at recall >= r, then integrate over recall steps.
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def box_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of XYXY boxes, continuous coordinates (no +1): (N, 4) x (M, 4) -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def voc_match_class(
    dets: list[tuple[object, np.ndarray, np.ndarray]],
    gts: dict[object, tuple[np.ndarray, np.ndarray]],
    iou_thresholds: Sequence[float],
) -> tuple[dict[float, tuple[np.ndarray, np.ndarray]], int]:
    """Match one class's detections to its ground truth at several IoU thresholds.

    Args:
        dets: per image ``(image_id, scores (K,), boxes (K, 4) XYXY)``.
        gts: ``image_id -> (boxes (G, 4) XYXY, difficult (G,) bool)`` for this class.
        iou_thresholds: thresholds (fractions); a match needs IoU strictly above.
    Returns:
        ``({thr: (rec (D',), prec (D',))}, npos)`` — curves over the detections in decreasing score
        order, ignored (difficult) detections removed; npos = number of non-difficult GT boxes.
    """
    npos = int(sum(int((~d).sum()) for _, d in gts.values()))
    empty = (np.zeros((0, 4)), np.zeros((0,), dtype=bool))
    all_scores = []
    # Per threshold, per detection: +1 TP, 0 FP, -1 ignored.
    outcome = {t: [] for t in iou_thresholds}
    for image_id, scores, boxes in dets:
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.size == 0:
            continue
        gt_boxes, difficult = gts.get(image_id, empty)
        order = np.argsort(-scores, kind="stable")
        all_scores.append(scores[order])
        if len(gt_boxes) == 0:
            for t in iou_thresholds:
                outcome[t].append(np.zeros(scores.size, dtype=np.int8))
            continue
        ious = box_iou_np(np.asarray(boxes)[order], gt_boxes)
        best = ious.argmax(axis=1)  # devkit: the best box among *all* of the image's boxes of this class
        best_iou = ious[np.arange(len(order)), best]
        for t in iou_thresholds:
            taken = np.zeros(len(gt_boxes), dtype=bool)
            res = np.zeros(scores.size, dtype=np.int8)
            # Greedy in score order within the image is equivalent to the devkit's global order:
            # only detections of the same image compete for a box.
            for k in range(scores.size):
                if best_iou[k] > t:
                    j = best[k]
                    if difficult[j]:
                        res[k] = -1
                    elif not taken[j]:
                        taken[j] = True
                        res[k] = 1
            outcome[t].append(res)

    curves = {}
    if not all_scores:
        for t in iou_thresholds:
            curves[t] = (np.zeros(0), np.zeros(0))
        return curves, npos
    scores_cat = np.concatenate(all_scores)
    global_order = np.argsort(-scores_cat, kind="stable")
    for t in iou_thresholds:
        res = np.concatenate(outcome[t])[global_order]
        res = res[res >= 0]
        tp = np.cumsum(res == 1)
        fp = np.cumsum(res == 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            rec = tp / float(npos) if npos > 0 else np.full(tp.shape, np.nan)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        curves[t] = (rec, prec)
    return curves, npos


class PascalVOCDetectionEvaluator(DatasetEvaluator):
    """VOC AP per class at IoU 0.5 (11-point and area metrics) and mAP over IoU 0.5:0.95.

    Ground truth: the dataset dicts of ``dataset_name`` (annotations with ``bbox``, ``bbox_mode``,
    contiguous ``category_id`` and optional ``difficult``). Results (x100, main process)::

        {"bbox": {"AP": mean over IoU .50:.05:.95, "AP50", "AP75",   # the default metric
                  "AP50_11pt", "AP50_area",                          # both metrics at IoU .5
                  "AP50-<class>": per-class AP at .5 (default metric)}}
    """

    def __init__(self, dataset_name: str, use_07_metric: bool | None = None, distributed: bool = True):
        """
        Args:
            dataset_name: a registered dataset with ``thing_classes`` metadata.
            use_07_metric: force the 11-point (True) or area (False) metric; None: by the metadata's
                ``year`` (2007 -> 11-point).
            distributed: gather predictions from all ranks.
        """
        self._dataset_name = dataset_name
        meta = MetadataCatalog.get(dataset_name)
        classes = meta.get("thing_classes")
        if not classes:
            raise KeyError(f"PascalVOCDetectionEvaluator: metadata of {dataset_name!r} has no 'thing_classes'")
        self._class_names = list(classes)
        if use_07_metric is None:
            use_07_metric = int(meta.get("year", 0) or 0) == 2007
        self._is_2007 = bool(use_07_metric)
        self._distributed = distributed
        self.reset()

    def reset(self) -> None:
        # class id -> list of (image_id, scores (K,), boxes (K, 4))
        self._predictions: dict[int, list] = defaultdict(list)

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        for inp, out in zip(inputs, outputs):
            image_id = inp["image_id"]
            inst = out["instances"].to("cpu")
            if len(inst) == 0:
                continue
            check_finite_predictions(inst, inp, f"PascalVOCDetectionEvaluator({self._dataset_name!r})")
            boxes = inst.pred_boxes.tensor.detach().double().numpy()
            scores = inst.scores.detach().double().numpy()
            classes = inst.pred_classes.detach().numpy()
            for c in np.unique(classes):
                m = classes == c
                self._predictions[int(c)].append((image_id, scores[m], boxes[m]))

    def _load_ground_truth(self) -> dict[int, dict]:
        """class id -> image_id -> (boxes (G,4) XYXY_ABS, difficult (G,) bool)."""
        per_class: dict[int, dict] = defaultdict(dict)
        for idx, d in enumerate(DatasetCatalog.get(self._dataset_name)):
            image_id = d.get("image_id", idx)
            buckets: dict[int, tuple[list, list]] = defaultdict(lambda: ([], []))
            for j, a in enumerate(d.get("annotations", [])):
                try:
                    box = BoxMode.convert(list(map(float, a["bbox"])), BoxMode(a["bbox_mode"]), BoxMode.XYXY_ABS)
                    cls = int(a["category_id"])
                except KeyError as e:
                    raise KeyError(
                        f"PascalVOCDetectionEvaluator({self._dataset_name!r}): annotation {j} of "
                        f"image {image_id!r} lacks {e}"
                    ) from None
                buckets[cls][0].append(box)
                buckets[cls][1].append(bool(a.get("difficult", 0)))
            for cls, (boxes, diff) in buckets.items():
                per_class[cls][image_id] = (
                    np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                    np.asarray(diff, dtype=bool),
                )
        return per_class

    def evaluate(self) -> dict | None:
        if self._distributed:
            all_predictions = comm.gather(dict(self._predictions), dst=0)
            if not comm.is_main_process():
                return None
        else:
            all_predictions = [dict(self._predictions)]
        predictions: dict[int, list] = defaultdict(list)
        for part in all_predictions:
            for cls, lst in part.items():
                predictions[cls].extend(lst)
        if not any(predictions.values()):
            logger.warning("[PascalVOCDetectionEvaluator] Did not receive any predictions; APs are 0.")

        logger.info(
            "Evaluating %s using the %s metric (IoU computed like the VOC devkit).",
            self._dataset_name,
            "VOC2007 11-point" if self._is_2007 else "area-under-curve",
        )
        gts = self._load_ground_truth()
        thresholds = [t / 100.0 for t in IOU_THRESHOLDS]
        ap_default = {t: [] for t in IOU_THRESHOLDS}  # per threshold: per-class APs
        ap50_07, ap50_area = [], []
        for cls in range(len(self._class_names)):
            curves, npos = voc_match_class(predictions.get(cls, []), gts.get(cls, {}), thresholds)
            if npos == 0:
                logger.warning(
                    "VOC eval: class %r has no non-difficult ground truth; its AP is NaN", self._class_names[cls]
                )
                for t in IOU_THRESHOLDS:
                    ap_default[t].append(float("nan"))
                ap50_07.append(float("nan"))
                ap50_area.append(float("nan"))
                continue
            for t, thr in zip(IOU_THRESHOLDS, thresholds):
                rec, prec = curves[thr]
                ap_default[t].append(voc_ap(rec, prec, self._is_2007) * 100)
                if t == 50:
                    ap50_07.append(voc_ap(rec, prec, True) * 100)
                    ap50_area.append(voc_ap(rec, prec, False) * 100)

        def mean(x):
            x = np.asarray(x, dtype=np.float64)
            return float(np.mean(x[~np.isnan(x)])) if np.any(~np.isnan(x)) else float("nan")

        map_per_thr = {t: mean(v) for t, v in ap_default.items()}
        per_class_ap = np.asarray([ap_default[t] for t in IOU_THRESHOLDS])  # (T, C)
        table = tabulate(
            [(name, ap50_07[i], ap50_area[i], mean(per_class_ap[:, i])) for i, name in enumerate(self._class_names)],
            headers=["category", "AP50 (11-pt)", "AP50 (area)", "AP .50:.95"],
            tablefmt="pipe",
            floatfmt=".2f",
            numalign="left",
        )
        logger.info("Per-class VOC AP of %s:\n%s", self._dataset_name, table)

        res = OrderedDict()
        res["AP"] = mean(list(map_per_thr.values()))
        res["AP50"] = map_per_thr[50]
        res["AP75"] = map_per_thr[75]
        res["AP50_11pt"] = mean(ap50_07)
        res["AP50_area"] = mean(ap50_area)
        for i, name in enumerate(self._class_names):
            res["AP50-" + name] = ap_default[50][i]
        return OrderedDict(bbox=res)
