"""COCO box AP over a resampled image list, for a bootstrap over images.

pycocotools evaluates each (category, area range, image) once (``COCOeval.evaluate``); the AP of any
multiset of images is then an *accumulation* of those per-image results. :class:`PerImageCOCOEval` keeps
them as arrays sorted once by score, and :meth:`PerImageCOCOEval.metrics` accumulates them for many image
weightings at a time (weight = how often an image was drawn), with pycocotools' own rules (detections
sorted by score, true/false positives counted cumulatively, the precision envelope, 101 recall points,
-1 for classes without ground truth). With every weight 1 it reproduces ``COCOeval.accumulate`` +
``summarize``; :func:`bootstrap_ap_difference` resamples the images of one seed pair to give an
interval for (variant - baseline).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .statistics import Interval, percentile_interval

__all__ = ["PerImageCOCOEval", "bootstrap_ap_difference", "bootstrap_run_pair", "STANDARD_METRICS"]

# name -> (IoU threshold or None for the 0.50:0.95 mean, area range label)
STANDARD_METRICS = {
    "AP": (None, "all"),
    "AP50": (0.5, "all"),
    "AP75": (0.75, "all"),
    "APs": (None, "small"),
    "APm": (None, "medium"),
    "APl": (None, "large"),
}


@dataclass
class _Accumulator:
    """Detections of one (category, area range), over all images, sorted as pycocotools sorts them."""

    image_index: np.ndarray  # (D,) int: which image each detection belongs to
    tp: np.ndarray  # (T, D) float: 1 where a detection matches a (non-ignored) ground truth at IoU thr t
    fp: np.ndarray  # (T, D) float: 1 where it matches nothing and is not ignored
    num_gt: np.ndarray  # (I,) int: non-ignored ground truths per image


class PerImageCOCOEval:
    """Per-image COCO box evaluation of ``results`` against ``coco_gt``, accumulable over any image weights.

    Args:
        coco_gt: a pycocotools ``COCO`` with the ground truth.
        results: COCO result dicts (``image_id``, ``category_id`` in the json's ids, ``bbox`` XYWH, ``score``).
        img_ids: the images to evaluate (default: every image of ``coco_gt``); weights follow this order.
        max_dets: detections per image (COCO: 100).
    """

    def __init__(self, coco_gt, results: list[dict], img_ids: Sequence[int] | None = None, max_dets: int = 100):
        from pycocotools.cocoeval import COCOeval

        self.img_ids = sorted(coco_gt.getImgIds()) if img_ids is None else sorted(int(i) for i in img_ids)
        ev = COCOeval(coco_gt, iouType="bbox")
        p = ev.params
        p.imgIds, p.maxDets = self.img_ids, [1, 10, int(max_dets)]
        self.iou_thresholds = np.asarray(p.iouThrs, dtype=np.float64)
        self.recall_thresholds = np.asarray(p.recThrs, dtype=np.float64)
        self.area_labels = list(p.areaRngLbl)
        self.cat_ids = list(p.catIds)
        n_img, n_area = len(self.img_ids), len(p.areaRng)
        self._acc: dict[tuple[int, int], _Accumulator | None] = {}
        if not results:  # (pycocotools cannot load an empty result list) precision 0 where there is ground truth
            for k, cat in enumerate(self.cat_ids):
                for a, (lo, hi) in enumerate(p.areaRng):
                    num_gt = np.array(
                        [
                            sum(
                                1
                                for g in coco_gt.imgToAnns[i]
                                if g["category_id"] == cat and not g.get("iscrowd", 0) and lo <= g["area"] <= hi
                            )
                            for i in self.img_ids
                        ],
                        dtype=np.int64,
                    )
                    empty = np.zeros((len(self.iou_thresholds), 0))
                    self._acc[k, a] = (
                        _Accumulator(np.zeros(0, np.int64), empty, empty, num_gt) if num_gt.any() else None
                    )
            return
        with contextlib.redirect_stdout(io.StringIO()):
            ev.cocoDt = coco_gt.loadRes([dict(r) for r in results])
            ev.evaluate()
        for k in range(len(self.cat_ids)):
            for a in range(n_area):
                start = (k * n_area + a) * n_img  # pycocotools orders evalImgs by category, area, image
                self._acc[k, a] = self._gather(ev.evalImgs[start : start + n_img], int(max_dets))

    def _gather(self, entries: list, max_dets: int) -> _Accumulator | None:
        entries = [(i, e) for i, e in enumerate(entries) if e is not None]
        if not entries:
            return None  # pycocotools: no ground truth and no detection in any image -> precision -1
        num_gt = np.zeros(len(self.img_ids), dtype=np.int64)
        scores, image_index, matches, ignore = [], [], [], []
        for i, e in entries:
            num_gt[i] = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
            s = np.asarray(e["dtScores"][:max_dets], dtype=np.float64)
            scores.append(s)
            image_index.append(np.full(len(s), i, dtype=np.int64))
            matches.append(np.asarray(e["dtMatches"])[:, :max_dets])
            ignore.append(np.asarray(e["dtIgnore"])[:, :max_dets])
        s = np.concatenate(scores)
        order = np.argsort(-s, kind="mergesort")  # as pycocotools: stable, images in img_ids order
        dtm = np.concatenate(matches, axis=1)[:, order]
        dtig = np.concatenate(ignore, axis=1)[:, order].astype(bool)
        tp = np.logical_and(dtm != 0, ~dtig).astype(np.float64)
        fp = np.logical_and(dtm == 0, ~dtig).astype(np.float64)
        return _Accumulator(np.concatenate(image_index)[order], tp, fp, num_gt)

    def _precision(self, acc: _Accumulator | None, weights: np.ndarray) -> np.ndarray:
        """Interpolated precision (B, T, R) for image weights (B, I); -1 where the class has no ground truth."""
        b, t, r = len(weights), len(self.iou_thresholds), len(self.recall_thresholds)
        out = np.full((b, t, r), -1.0)
        if acc is None:
            return out
        npig = weights @ acc.num_gt.astype(np.float64)  # (B,)
        has_gt = npig > 0
        if not has_gt.any():
            return out
        d = acc.tp.shape[1]
        if d == 0:
            out[has_gt] = 0.0
            return out
        w = weights[:, acc.image_index]  # (B, D)
        tps = np.cumsum(acc.tp[None] * w[:, None, :], axis=2)  # (B, T, D)
        fps = np.cumsum(acc.fp[None] * w[:, None, :], axis=2)
        rc = tps / np.maximum(npig, 1e-12)[:, None, None]
        pr = tps / (tps + fps + np.spacing(1))
        # precision envelope: the best precision at this or any higher recall
        pr = np.flip(np.maximum.accumulate(np.flip(pr, axis=2), axis=2), axis=2)
        # first detection reaching each recall threshold (pycocotools: searchsorted, side "left"); rows are
        # searched one by one so that the float comparisons are exactly pycocotools'
        rows = b * t
        rc2, pr2 = rc.reshape(rows, d), pr.reshape(rows, d)
        idx = np.stack([np.searchsorted(rc2[i], self.recall_thresholds, side="left") for i in range(rows)])
        q = np.where(idx < d, np.take_along_axis(pr2, np.minimum(idx, d - 1), axis=1), 0.0).reshape(b, t, r)
        out[has_gt] = q[has_gt]
        return out

    def metrics(self, weights: np.ndarray | None = None, extra_iou_thresholds: Sequence[float] = ()) -> dict:
        """AP, AP50, AP75, APs, APm, APl (and ``AP<100*t>`` for each extra IoU threshold ``t``), x100.

        Args:
            weights: (B, I) image multiplicities in ``img_ids`` order; default one row of ones.
        Returns:
            ``{name: (B,) array}``; NaN where no class has ground truth.
        """
        w = np.ones((1, len(self.img_ids))) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != len(self.img_ids):
            raise ValueError(f"PerImageCOCOEval.metrics: weights must be (B, {len(self.img_ids)}), got {w.shape}")
        wanted = dict(STANDARD_METRICS)
        for thr in extra_iou_thresholds:
            if not np.isclose(self.iou_thresholds, thr).any():
                raise ValueError(
                    f"PerImageCOCOEval: IoU threshold {thr} is not one of COCO's {self.iou_thresholds.tolist()}"
                )
            wanted[f"AP{round(100 * thr)}"] = (float(thr), "all")
        by_area: dict[str, np.ndarray] = {}
        for label in {area for _, area in wanted.values()}:
            a = self.area_labels.index(label)
            # (B, T, R, K)
            by_area[label] = np.stack([self._precision(self._acc[k, a], w) for k in range(len(self.cat_ids))], axis=3)
        out = {}
        for name, (thr, label) in wanted.items():
            prec = by_area[label]
            if thr is not None:
                prec = prec[:, np.where(np.isclose(self.iou_thresholds, thr))[0]]
            flat = prec.reshape(len(w), -1)
            valid = flat > -1
            count = valid.sum(axis=1)
            total = np.where(valid, flat, 0.0).sum(axis=1)
            out[name] = np.where(count > 0, 100.0 * total / np.maximum(count, 1), np.nan)
        return out


def bootstrap_ap_difference(
    baseline: PerImageCOCOEval,
    variant: PerImageCOCOEval,
    num_samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    extra_iou_thresholds: Sequence[float] = (),
    batch: int = 100,
) -> dict[str, Interval]:
    """(variant - baseline) per metric on the full image set, with a percentile interval from
    ``num_samples`` resamples of the images (with replacement; both runs see the same resampled list)."""
    if baseline.img_ids != variant.img_ids:
        raise ValueError("bootstrap_ap_difference: the two evaluations cover different images")
    if num_samples < 1:
        raise ValueError(f"bootstrap_ap_difference: num_samples must be >= 1, got {num_samples}")
    n = len(baseline.img_ids)
    rng = np.random.RandomState(seed)
    observed_b = baseline.metrics(extra_iou_thresholds=extra_iou_thresholds)
    observed_v = variant.metrics(extra_iou_thresholds=extra_iou_thresholds)
    samples: dict[str, list[np.ndarray]] = {k: [] for k in observed_b}
    done = 0
    while done < num_samples:
        m = min(batch, num_samples - done)
        draws = rng.randint(0, n, size=(m, n))
        weights = np.zeros((m, n))
        np.add.at(weights, (np.repeat(np.arange(m), n), draws.ravel()), 1.0)
        mb = baseline.metrics(weights, extra_iou_thresholds)
        mv = variant.metrics(weights, extra_iou_thresholds)
        for k in samples:
            samples[k].append(mv[k] - mb[k])
        done += m
    out = {}
    for k, chunks in samples.items():
        diff = float(observed_v[k][0] - observed_b[k][0])
        values = np.concatenate(chunks)
        values = values[np.isfinite(values)]
        if not np.isfinite(diff) or values.size == 0:
            continue
        out[k] = percentile_interval(
            diff, values.tolist(), confidence, f"bootstrap over {n} images, {len(values)} resamples"
        )
    return out


def _run_ground_truth(run_dir: str):
    """The COCO ground truth a finished run was evaluated on: the dataset named by its saved config's
    evaluator (its registered json, or the converted copy the evaluator left in the run folder)."""
    import os

    from net_detr2.config import LazyConfig

    from .coco_evaluation import convert_to_coco_dict, load_coco_gt

    cfg_file = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(cfg_file):
        raise FileNotFoundError(f"bootstrap: {cfg_file} not found (the run's saved config names its dataset)")
    cfg = LazyConfig.load(cfg_file)
    try:
        name = cfg.dataloader.evaluator.dataset_name
    except Exception as e:
        raise ValueError(f"bootstrap: {cfg_file} has no dataloader.evaluator.dataset_name: {e}") from e
    name = name if isinstance(name, str) else list(name)[0]
    from net_detr2.data import DatasetCatalog, MetadataCatalog

    cached = os.path.join(run_dir, f"{name}_coco_format.json")
    if os.path.isfile(cached):
        return load_coco_gt(cached)
    DatasetCatalog.get(name)  # generates a synthetic dataset and announces its json on first use
    json_file = MetadataCatalog.get(name).get("json_file")
    return load_coco_gt(json_file) if json_file else load_coco_gt(convert_to_coco_dict(name))


def bootstrap_run_pair(
    baseline_dir: str,
    variant_dir: str,
    num_samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    extra_iou_thresholds: Sequence[float] = (),
) -> dict[str, Interval]:
    """:func:`bootstrap_ap_difference` of two finished runs, from the ``coco_instances_results.json`` their
    COCO evaluation saved and the ground truth of the baseline's dataset."""
    import json
    import os

    gt = _run_ground_truth(baseline_dir)
    evals = []
    for d in (baseline_dir, variant_dir):
        path = os.path.join(d, "coco_instances_results.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"bootstrap: {path} not found (runs evaluated with COCOEvaluator save it)")
        with open(path, encoding="utf-8") as f:
            evals.append(PerImageCOCOEval(gt, json.load(f)))
    return bootstrap_ap_difference(
        evals[0], evals[1], num_samples, seed, confidence, extra_iou_thresholds=extra_iou_thresholds
    )
