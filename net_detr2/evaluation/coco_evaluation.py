"""COCO-style box AP with the official ``pycocotools`` implementation."""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import json
import logging
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from tabulate import tabulate

import net_detr2.data  # noqa: F401  (importing the package registers the builtin datasets)
from net_detr2.checkpoint import atomic_write
from net_detr2.data.catalog import DatasetCatalog, MetadataCatalog
from net_detr2.structures import BoxMode
from net_detr2.utils import comm

from .evaluator import DatasetEvaluator, check_finite_predictions

__all__ = [
    "COCOEvaluator",
    "instances_to_coco_json",
    "convert_to_coco_dict",
    "load_coco_gt",
    "evaluate_predictions_on_coco",
    "bbox_ap_stats",
    "ap_at",
    "ar_at",
    "part_false_positive_rate",
    "COCO_BBOX_METRICS",
]

logger = logging.getLogger(__name__)

# Names of COCOeval.stats[0:6] for boxes.
COCO_BBOX_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def _quiet():
    """pycocotools prints progress to stdout; keep it out of our logs."""
    return contextlib.redirect_stdout(io.StringIO())


# ---------------------------------------------------------------------------- ground truth
def _reverse_id_mapper(metadata):
    mapping = metadata.get("thing_dataset_id_to_contiguous_id") if hasattr(metadata, "get") else None
    if mapping:
        reverse = {v: k for k, v in mapping.items()}
        return lambda contiguous_id: reverse[contiguous_id]
    return lambda contiguous_id: contiguous_id


def _annotation_area(obj: dict, bbox_xyxy: list[float], height: int, width: int) -> float:
    """Segmentation area when the annotation has one (as COCO does), else the box area."""
    seg = obj.get("segmentation")
    if seg:
        from pycocotools import mask as mask_util

        if isinstance(seg, list):  # polygons
            rles = mask_util.frPyObjects(seg, height, width)
            return float(mask_util.area(mask_util.merge(rles)))
        if isinstance(seg, dict):  # RLE
            if isinstance(seg.get("counts"), list):
                seg = mask_util.frPyObjects(seg, height, width)
            return float(mask_util.area(seg))
    x0, y0, x1, y1 = bbox_xyxy
    return float(max(x1 - x0, 0.0) * max(y1 - y0, 0.0))


def convert_to_coco_dict(dataset_name: str) -> dict:
    """Turn a registered dataset's ``list[dict]`` into a COCO-format ground-truth dict.

    Category ids are mapped back to the dataset's own ids through the metadata's
    ``thing_dataset_id_to_contiguous_id`` when present (identity otherwise); boxes become
    XYWH_ABS; ``area`` is the segmentation area if there is one, else the box area; images keep
    their ``image_id``.
    """
    dataset_dicts = DatasetCatalog.get(dataset_name)
    metadata = MetadataCatalog.get(dataset_name)
    reverse_id_mapper = _reverse_id_mapper(metadata)
    thing_classes = metadata.get("thing_classes")
    if thing_classes is not None:
        categories = [{"id": reverse_id_mapper(i), "name": name} for i, name in enumerate(thing_classes)]
    else:
        ids = sorted({int(a["category_id"]) for d in dataset_dicts for a in d.get("annotations", [])})
        categories = [{"id": reverse_id_mapper(i), "name": str(i)} for i in ids]

    images, annotations = [], []
    for idx, d in enumerate(dataset_dicts):
        for key in ("height", "width"):
            if key not in d:
                raise KeyError(
                    f"convert_to_coco_dict({dataset_name!r}): dataset dict {idx} "
                    f"({d.get('file_name', '?')}) has no {key!r}"
                )
        image_id = d.get("image_id", idx)
        images.append(
            {
                "id": image_id,
                "width": int(d["width"]),
                "height": int(d["height"]),
                "file_name": str(d.get("file_name", "")),
            }
        )
        for j, obj in enumerate(d.get("annotations", [])):
            if "bbox" not in obj or "bbox_mode" not in obj or "category_id" not in obj:
                raise KeyError(
                    f"convert_to_coco_dict({dataset_name!r}): annotation {j} of image {image_id} "
                    f"needs 'bbox', 'bbox_mode' and 'category_id', has {sorted(obj)}"
                )
            mode = BoxMode(obj["bbox_mode"])
            size = (d["height"], d["width"])
            xyxy = (
                BoxMode.convert(list(map(float, obj["bbox"])), mode, BoxMode.XYXY_ABS, image_size=size)
                if mode in (BoxMode.XYXY_REL, BoxMode.XYWH_REL)
                else BoxMode.convert(list(map(float, obj["bbox"])), mode, BoxMode.XYXY_ABS)
            )
            xywh = BoxMode.convert(list(xyxy), BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
            ann = {
                "id": len(annotations) + 1,  # COCO ids start at 1 (0 is treated as "no match" by COCOeval)
                "image_id": image_id,
                "bbox": [round(float(v), 3) for v in xywh],
                "area": _annotation_area(obj, xyxy, int(d["height"]), int(d["width"])),
                "iscrowd": int(obj.get("iscrowd", 0)),
                "category_id": reverse_id_mapper(int(obj["category_id"])),
            }
            if obj.get("segmentation") and isinstance(obj["segmentation"], (list, dict)):
                ann["segmentation"] = obj["segmentation"]
            annotations.append(ann)

    logger.info(
        "Converted %d images / %d annotations of %r to COCO format", len(images), len(annotations), dataset_name
    )
    return {
        "info": {"description": f"net_detr2 conversion of dataset {dataset_name!r}"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
        "licenses": [],
    }


def load_coco_gt(gt: dict | str):
    """A pycocotools ``COCO`` object from a COCO-format dict (copied) or a json path."""
    from pycocotools.coco import COCO

    coco = COCO()
    if isinstance(gt, (str, os.PathLike)):
        path = os.fspath(gt)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"COCO json file not found: {path!r}")
        with open(path) as f:
            gt = json.load(f)
    else:
        gt = copy.deepcopy(gt)
    coco.dataset = gt
    with _quiet():
        coco.createIndex()
    return coco


# ---------------------------------------------------------------------------- predictions
def instances_to_coco_json(instances, img_id) -> list[dict]:
    """Box predictions of one image as COCO result dicts (XYWH boxes, *contiguous* class ids).

    Args:
        instances: ``Instances`` with ``pred_boxes`` (Boxes, XYXY_ABS), ``scores``, ``pred_classes``.
        img_id: the image's id.
    """
    num_instance = len(instances)
    if num_instance == 0:
        return []
    boxes = instances.pred_boxes.tensor.detach().cpu().double().numpy()
    boxes = BoxMode.convert(boxes, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS).tolist()
    scores = instances.scores.detach().cpu().tolist()
    classes = instances.pred_classes.detach().cpu().tolist()
    return [
        {"image_id": img_id, "category_id": int(classes[k]), "bbox": boxes[k], "score": float(scores[k])}
        for k in range(num_instance)
    ]


def evaluate_predictions_on_coco(
    coco_gt,
    coco_results: list[dict],
    iou_type: str = "bbox",
    img_ids: Sequence | None = None,
    max_dets_per_image: Sequence[int] | None = None,
    extra_area_ranges: Mapping[str, Sequence[float]] | None = None,
    gt_filter: Callable[[dict], bool] | None = None,
):
    """Run pycocotools' COCOeval; returns it (evaluated, accumulated, summarized) or None if no results.

    ``extra_area_ranges`` (label -> ``[low, high]`` box area in px^2) are evaluated beside COCO's four.
    ``gt_filter(annotation) -> bool``: ground truths it rejects are *ignored*, as crowd regions are: a
    detection matching one counts neither as a true nor as a false positive (AP of a subset of objects).
    """
    from pycocotools.cocoeval import COCOeval

    if len(coco_results) == 0:
        return None
    if iou_type != "bbox":
        raise ValueError(f"evaluate_predictions_on_coco: only 'bbox' is supported, got {iou_type!r}")
    coco_results = copy.deepcopy(coco_results)
    with _quiet():
        coco_dt = coco_gt.loadRes(coco_results)
        coco_eval = (COCOeval if gt_filter is None else _subset_cocoeval(gt_filter))(coco_gt, coco_dt, iou_type)
        for label, (low, high) in (extra_area_ranges or {}).items():
            coco_eval.params.areaRng.append([float(low), float(high)])
            coco_eval.params.areaRngLbl.append(label)
        if max_dets_per_image is not None:
            # COCOeval sorts maxDets and truncates detections at the largest: keep them unique and sorted.
            coco_eval.params.maxDets = sorted({int(m) for m in max_dets_per_image})
        if img_ids is not None:
            coco_eval.params.imgIds = list(img_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
        if list(coco_eval.params.maxDets) == [1, 10, 100] and gt_filter is None:
            # pycocotools' summary hard-codes maxDets=100 for AP; other settings use bbox_ap_stats only.
            summary = io.StringIO()
            with contextlib.redirect_stdout(summary):
                coco_eval.summarize()
    if list(coco_eval.params.maxDets) == [1, 10, 100] and gt_filter is None:
        logger.info("COCOeval summary:\n%s", summary.getvalue().rstrip())
    return coco_eval


def _subset_cocoeval(gt_filter: Callable[[dict], bool]):
    """A COCOeval class that also ignores the ground truths ``gt_filter`` rejects."""
    from pycocotools.cocoeval import COCOeval

    class SubsetCOCOeval(COCOeval):
        def _prepare(self):
            super()._prepare()  # sets every ground truth's "ignore" from "iscrowd"
            for gts in self._gts.values():
                for g in gts:
                    g["ignore"] = bool(g["ignore"]) or not gt_filter(g)

    return SubsetCOCOeval


def _mean_at(coco_eval, key: str, iou: float | None, area: str, max_dets: int | None) -> float:
    """The mean of the defined (> -1) entries of an accumulated COCOeval's ``eval[key]`` ("precision": iou, recall,
    class, area, maxDets; "recall": iou, class, area, maxDets) at one IoU threshold (``iou``, one of
    ``params.iouThrs``) or over all (``None``), one area label and ``max_dets`` (None: the largest); -1 when none."""
    p = coco_eval.params
    m = list(p.maxDets).index(max(p.maxDets) if max_dets is None else int(max_dets))
    values = coco_eval.eval[key][..., list(p.areaRngLbl).index(area), m]
    if iou is not None:
        t = np.where(np.isclose(p.iouThrs, iou))[0]
        if t.size == 0:
            raise ValueError(
                f"IoU threshold {iou} is not one of the evaluated thresholds {np.round(p.iouThrs, 2).tolist()}"
            )
        values = values[t]
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def ap_at(coco_eval, iou: float | None = None, area: str = "all", max_dets: int | None = None) -> float:
    """AP (fraction, -1 when undefined) from an accumulated COCOeval's precision array: at one IoU threshold
    (``iou``, which must be one of ``params.iouThrs``) or averaged over all (``None``), for one area label."""
    return _mean_at(coco_eval, "precision", iou, area, max_dets)


def ar_at(coco_eval, iou: float | None = None, area: str = "all", max_dets: int | None = None) -> float:
    """Average recall (fraction, -1 when undefined) from an accumulated COCOeval's recall array, at one IoU
    threshold or averaged over all (``None``), for one area label; like :func:`ap_at`."""
    return _mean_at(coco_eval, "recall", iou, area, max_dets)


def bbox_ap_stats(coco_eval, max_dets: int | None = None) -> np.ndarray:
    """AP, AP50, AP75, APs, APm, APl (fractions, -1 when undefined) with ``max_dets`` detections per image.

    ``max_dets`` defaults to the largest of ``params.maxDets``. Same numbers as
    ``COCOeval.summarize()``'s ``stats[:6]`` for the default maxDets [1, 10, 100], and also valid for
    other ``max_dets_per_image`` (pycocotools' summary looks for exactly 100).
    """
    pairs = ((None, "all"), (0.5, "all"), (0.75, "all"), (None, "small"), (None, "medium"), (None, "large"))
    return np.asarray([ap_at(coco_eval, iou, area, max_dets) for iou, area in pairs])


# ---------------------------------------------------------------------------- evaluator
class COCOEvaluator(DatasetEvaluator):
    """Box AP/AP50/AP75/APs/APm/APl (x100) and per-category AP of any COCO-format dataset.

    Ground truth comes from the metadata's ``json_file`` when the dataset has one (the official
    annotations, with their segmentation areas), otherwise the dataset dicts are converted in
    memory with :func:`convert_to_coco_dict` (written to
    ``output_dir/<dataset>_coco_format.json`` when ``output_dir`` is set and reused if
    ``allow_cached_coco``). Predicted contiguous class ids are mapped back to dataset category ids.

    Extra metrics, each from the same COCOeval matching: ``AP<t>`` at extra IoU thresholds (e.g. ``AP90``),
    AP over extra box-area ranges (e.g. ``APtiny``), and AP over a subset of the ground truth chosen by an
    annotation attribute (e.g. ``APvis30_60``: objects 30-60% visible; the other ground truths are ignored,
    as crowd regions are). Each option left at ``None`` takes the dataset metadata's entry of the same name
    when it has one (the claim-shaped ``shapes`` variants declare theirs; ``datasets/README.md``); pass an
    empty list/dict (``False`` for ``part_false_positives``) to switch it off.
    """

    def __init__(
        self,
        dataset_name: str,
        tasks: Sequence[str] | None = None,
        distributed: bool = True,
        output_dir: str | None = None,
        *,
        max_dets_per_image: int | None = None,
        use_fast_impl: bool = False,
        allow_cached_coco: bool = True,
        extra_iou_thresholds: Sequence[float] | None = None,
        extra_area_ranges: Mapping[str, Sequence[float]] | None = None,
        gt_slices: Mapping[str, Sequence] | None = None,
        part_false_positives: float | bool | None = None,
    ):
        """
        Args:
            dataset_name: a registered dataset (DatasetCatalog/MetadataCatalog).
            tasks: evaluation tasks; only ``("bbox",)`` is supported (the default).
            distributed: gather predictions from all ranks before evaluating (results on rank 0).
            output_dir: where ``coco_instances_results.json`` / ``instances_predictions.pth`` go.
            max_dets_per_image: detections per image considered by COCOeval (default 100).
            use_fast_impl: detectron2's C++ COCOeval is not available; True falls back to pycocotools
                with a warning (the numbers are the same).
            allow_cached_coco: reuse an existing converted json in ``output_dir``.
            extra_iou_thresholds: report ``AP<100 t>`` for each IoU threshold ``t`` (one of COCO's 0.50,
                0.55, ..., 0.95), e.g. ``[0.9]`` -> ``AP90``.
            extra_area_ranges: ``{name: [low, high]}`` box areas in px^2, e.g. ``{"APtiny": [0, 256]}``
                (COCO's semantics: detections outside the range that match nothing are not counted).
            gt_slices: ``{name: [attribute, low, high]}``: AP (IoU 0.50:0.95; or at one IoU threshold given as a
                4th element, e.g. ``[attribute, low, high, 0.5]``; or average recall with a 5th element
                ``"AR"``, e.g. ``[attribute, low, high, None, "AR"]``) over the ground truths whose annotation
                ``attribute`` lies in ``[low, high)``; detections matching other ground truths are ignored,
                detections matching nothing count as false positives in every slice (so a slice's AP sits
                below what the same objects would score alone, while its AR is unaffected).
            part_false_positives: a score threshold ``s``: for datasets whose images list unlabelled object
                parts (``"parts": [[x, y, w, h, category_id], ...]`` in the COCO image entries, as
                ``shapes_small_clutter`` has), report ``PFP``: the percentage of detections scoring >= ``s``
                whose box matches a part (IoU >= 0.5, any class). Lower is better. ``False`` switches it off.
        """
        self._logger = logger
        self._dataset_name = dataset_name
        self._distributed = distributed
        self._output_dir = output_dir
        tasks = tuple(tasks) if tasks is not None else ("bbox",)
        bad = [t for t in tasks if t != "bbox"]
        if bad:
            raise ValueError(f"COCOEvaluator: unsupported task(s) {bad}; only 'bbox' is implemented")
        self._tasks = tasks
        if use_fast_impl:
            warnings.warn(
                "COCOEvaluator: use_fast_impl=True is not available; using pycocotools (same numbers)", stacklevel=2
            )
        self._max_dets_per_image = [1, 10, 100] if max_dets_per_image is None else [1, 10, int(max_dets_per_image)]

        self._metadata = MetadataCatalog.get(dataset_name)
        self._extra_iou_thresholds, self._extra_area_ranges, self._gt_slices = _check_extra_metrics(
            dataset_name,
            self._metadata.get("extra_iou_thresholds", []) if extra_iou_thresholds is None else extra_iou_thresholds,
            self._metadata.get("extra_area_ranges", {}) if extra_area_ranges is None else extra_area_ranges,
            self._metadata.get("gt_slices", {}) if gt_slices is None else gt_slices,
        )
        pfp = self._metadata.get("part_false_positives") if part_false_positives is None else part_false_positives
        pfp = None if pfp is False else pfp
        if pfp is not None and not 0.0 <= float(pfp) <= 1.0:
            raise ValueError(
                f"COCOEvaluator({dataset_name!r}): part_false_positives must be a score in [0, 1], got {pfp}"
            )
        self._pfp_threshold = None if pfp is None else float(pfp)
        json_file = self._metadata.get("json_file")
        if json_file:
            self._coco_api = load_coco_gt(json_file)
        else:
            cache = os.path.join(output_dir, f"{dataset_name}_coco_format.json") if output_dir else None
            if cache and allow_cached_coco and os.path.isfile(cache):
                self._logger.info("Using cached COCO-format annotations at %s", cache)
                self._coco_api = load_coco_gt(cache)
            else:
                coco_dict = convert_to_coco_dict(dataset_name)
                if cache:
                    atomic_write(cache, lambda f: json.dump(coco_dict, f), mode="w")
                self._coco_api = load_coco_gt(coco_dict)
        # Datasets without any annotation (e.g. test-dev) are predicted but not evaluated.
        self._do_evaluation = "annotations" in self._coco_api.dataset
        self.reset()

    def reset(self) -> None:
        self._predictions: list[dict] = []

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        for inp, out in zip(inputs, outputs):
            if "image_id" not in inp:
                raise KeyError(f"COCOEvaluator: input dict for {inp.get('file_name', '?')!r} has no 'image_id'")
            prediction = {"image_id": inp["image_id"]}
            if "instances" in out:
                instances = out["instances"].to("cpu")
                check_finite_predictions(instances, inp, f"COCOEvaluator({self._dataset_name!r})")
                prediction["instances"] = instances_to_coco_json(instances, inp["image_id"])
            if len(prediction) > 1:
                self._predictions.append(prediction)

    def evaluate(self, img_ids: Sequence | None = None) -> dict | None:
        """Results ``{"bbox": {AP, AP50, AP75, APs, APm, APl, AP-<class>...}}`` on the main process."""
        if self._distributed:
            comm.synchronize()
            predictions = list(itertools.chain(*comm.gather(self._predictions, dst=0)))
            if not comm.is_main_process():
                return {}
        else:
            predictions = self._predictions

        if len(predictions) == 0:
            self._logger.warning("[COCOEvaluator] Did not receive valid predictions; all metrics are NaN.")
        if self._output_dir:
            path = os.path.join(self._output_dir, "instances_predictions.pth")
            atomic_write(path, lambda f: torch.save(predictions, f))

        self._results: OrderedDict = OrderedDict()
        self._eval_predictions(predictions, img_ids=img_ids)
        return copy.deepcopy(self._results)

    def _eval_predictions(self, predictions: list[dict], img_ids=None) -> None:
        coco_results = list(itertools.chain(*[p.get("instances", []) for p in predictions]))
        num_classes = len(self._metadata.get("thing_classes") or [])
        mapping = self._metadata.get("thing_dataset_id_to_contiguous_id")
        if mapping:
            reverse = {v: k for k, v in mapping.items()}
            for r in coco_results:
                cid = r["category_id"]
                if cid not in reverse:
                    raise ValueError(
                        f"COCOEvaluator({self._dataset_name!r}): predicted class {cid} is outside "
                        f"the contiguous ids 0..{len(reverse) - 1} of the dataset"
                    )
                r["category_id"] = reverse[cid]
        elif num_classes:
            bad = [r["category_id"] for r in coco_results if not 0 <= r["category_id"] < num_classes]
            if bad:
                raise ValueError(
                    f"COCOEvaluator({self._dataset_name!r}): predicted class {bad[0]} is outside 0..{num_classes - 1}"
                )

        if self._output_dir:
            path = os.path.join(self._output_dir, "coco_instances_results.json")
            self._logger.info("Saving results to %s", path)
            atomic_write(path, lambda f: json.dump(coco_results, f), mode="w")

        if not self._do_evaluation:
            self._logger.info("Annotations are not available for evaluation.")
            return
        for task in self._tasks:
            coco_eval = evaluate_predictions_on_coco(
                self._coco_api,
                coco_results,
                task,
                img_ids=img_ids,
                max_dets_per_image=self._max_dets_per_image,
                extra_area_ranges=self._extra_area_ranges,
            )
            self._results[task] = self._derive_coco_results(coco_eval, self._metadata.get("thing_classes"))
            if self._gt_slices:
                self._results[task].update(self._slice_results(coco_results, task, img_ids))
            if self._pfp_threshold is not None:
                images = self._coco_api.dataset["images"]
                if img_ids is not None:
                    images = [im for im in images if im["id"] in set(img_ids)]
                if not any("parts" in im for im in images):
                    raise ValueError(
                        f"COCOEvaluator({self._dataset_name!r}): part_false_positives needs 'parts' in the COCO image "
                        "entries of the ground truth, which has none"
                    )
                self._results[task]["PFP"] = part_false_positive_rate(images, coco_results, self._pfp_threshold)

    def _slice_results(self, coco_results: list[dict], task: str, img_ids) -> dict:
        """AP (x100, NaN when undefined) over each ground-truth subset of ``gt_slices``; slices of the same
        subset share one evaluation."""
        out: dict[str, float] = {}
        subsets: dict[tuple, list[tuple[str, float | None, str]]] = {}
        for name, (attribute, low, high, iou, kind) in self._gt_slices.items():
            subsets.setdefault((attribute, low, high), []).append((name, iou, kind))
        for (attribute, low, high), readouts in subsets.items():
            names = [n for n, _, _ in readouts]

            def keep(g, names=names, attribute=attribute, low=low, high=high):
                if attribute not in g:
                    raise ValueError(
                        f"COCOEvaluator({self._dataset_name!r}): gt_slices {names} need the annotation attribute "
                        f"{attribute!r}, which annotation id {g.get('id')} does not have"
                    )
                return low <= float(g[attribute]) < high

            coco_eval = evaluate_predictions_on_coco(
                self._coco_api,
                coco_results,
                task,
                img_ids=img_ids,
                max_dets_per_image=self._max_dets_per_image,
                gt_filter=keep,
            )
            for name, iou, kind in readouts:
                read = ap_at if kind == "AP" else ar_at
                v = read(coco_eval, iou, max_dets=self._max_dets_per_image[-1]) if coco_eval is not None else -1.0
                out[name] = v * 100 if v >= 0 else float("nan")
        if out:
            self._logger.info("AP over ground-truth subsets:\n%s", _small_table(out))
        return out

    def _derive_coco_results(self, coco_eval, class_names: Sequence[str] | None) -> dict:
        """COCOeval stats (x100) plus per-category AP (area 'all', the largest maxDets)."""
        metrics = COCO_BBOX_METRICS
        if coco_eval is None:
            self._logger.warning("No predictions from the model! Box metrics are NaN.")
            names = list(metrics) + [f"AP{round(100 * t)}" for t in self._extra_iou_thresholds]
            return {m: float("nan") for m in names + list(self._extra_area_ranges)}
        stats = bbox_ap_stats(coco_eval, self._max_dets_per_image[-1])
        m = list(coco_eval.params.maxDets).index(self._max_dets_per_image[-1])
        results = {m: float(stats[i] * 100) if stats[i] >= 0 else float("nan") for i, m in enumerate(metrics)}
        extra = {
            f"AP{round(100 * t)}": ap_at(coco_eval, t, "all", self._max_dets_per_image[-1])
            for t in self._extra_iou_thresholds
        }
        extra.update(
            {name: ap_at(coco_eval, None, name, self._max_dets_per_image[-1]) for name in self._extra_area_ranges}
        )
        results.update({k: v * 100 if v >= 0 else float("nan") for k, v in extra.items()})
        self._logger.info("Evaluation results for bbox:\n%s", _small_table(results))
        if not np.isfinite(sum(results.values())):
            self._logger.info("Some metrics cannot be computed and are shown as NaN.")
        if not class_names or len(class_names) <= 1:
            return results

        # precision: (iou thresholds, recall thresholds, classes, area ranges, max dets); -1 = no GT.
        precisions = coco_eval.eval["precision"]
        cat_ids = list(coco_eval.params.catIds)
        if len(cat_ids) != len(class_names):
            raise ValueError(
                f"COCOEvaluator({self._dataset_name!r}): COCO ground truth has {len(cat_ids)} "
                f"categories but thing_classes has {len(class_names)}"
            )
        to_dataset_id = _reverse_id_mapper(self._metadata)
        per_category = []
        for idx, name in enumerate(class_names):
            k = cat_ids.index(to_dataset_id(idx))  # precision's class axis follows sorted catIds
            p = precisions[:, :, k, 0, m]
            p = p[p > -1]
            ap = float(np.mean(p) * 100) if p.size else float("nan")
            per_category.append((f"{name}", ap))
        n_cols = min(6, len(per_category) * 2)
        flat = list(itertools.chain(*per_category))
        rows = itertools.zip_longest(*[flat[i::n_cols] for i in range(n_cols)])
        table = tabulate(
            rows, tablefmt="pipe", floatfmt=".3f", headers=["category", "AP"] * (n_cols // 2), numalign="left"
        )
        self._logger.info("Per-category bbox AP:\n%s", table)
        results.update({"AP-" + name: ap for name, ap in per_category})
        return results


def part_false_positive_rate(
    images: Sequence[dict], coco_results: Sequence[dict], score_threshold: float, iou_threshold: float = 0.5
) -> float:
    """Percentage of detections scoring >= ``score_threshold`` whose box matches an unlabelled object part of
    its image (IoU >= ``iou_threshold``, any class); NaN without such detections.

    Args:
        images: COCO image entries, each with ``"parts": [[x, y, w, h, ...], ...]`` (XYWH).
        coco_results: COCO result dicts (``image_id``, ``bbox`` XYWH, ``score``).
    """
    parts = {
        im["id"]: np.asarray([p[:4] for p in im.get("parts", [])], dtype=np.float64).reshape(-1, 4) for im in images
    }
    by_image: dict = {}
    for r in coco_results:
        if r["score"] >= score_threshold and r["image_id"] in parts:
            by_image.setdefault(r["image_id"], []).append(r["bbox"])
    total = sum(len(v) for v in by_image.values())
    if total == 0:
        return float("nan")
    hits = 0
    for image_id, boxes in by_image.items():
        p = parts[image_id]
        if len(p) == 0:
            continue
        d = np.asarray(boxes, dtype=np.float64)
        lt = np.maximum(d[:, None, :2], p[None, :, :2])
        rb = np.minimum(d[:, None, :2] + d[:, None, 2:], p[None, :, :2] + p[None, :, 2:])
        inter = np.clip(rb - lt, 0, None).prod(axis=2)
        union = d[:, None, 2:].prod(axis=2) + p[None, :, 2:].prod(axis=2) - inter
        hits += int((inter / np.maximum(union, 1e-12) >= iou_threshold).any(axis=1).sum())
    return 100.0 * hits / total


_COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def _check_extra_metrics(dataset_name: str, iou_thresholds, area_ranges, slices) -> tuple[list, dict, dict]:
    """Validate the extra-metric options (names, thresholds, ranges); returns them as plain lists/dicts:
    IoU thresholds, ``{name: [low, high]}``, ``{name: [attribute, low, high, IoU threshold or None]}``."""
    where = f"COCOEvaluator({dataset_name!r})"

    def check_iou(t: float, what: str) -> float:
        if not np.isclose(_COCO_IOU_THRESHOLDS, t).any():
            raise ValueError(
                f"{where}: {what} {t} is not one of COCO's IoU thresholds {np.round(_COCO_IOU_THRESHOLDS, 2).tolist()}"
            )
        return float(t)

    def check_entry(option: str, name, value, form: str, sizes: tuple[int, ...]) -> list:
        if not isinstance(name, str) or not name or "-" in name or "/" in name or name in COCO_BBOX_METRICS:
            raise ValueError(
                f"{where}: {option} name {name!r} must be a new metric name without '-' or '/' "
                "('-' marks per-category metrics)"
            )
        value = list(value)
        if len(value) not in sizes:
            raise ValueError(f"{where}: {option}[{name!r}] = {value!r} is not of the form {form}")
        return value

    ious = [check_iou(float(t), "extra_iou_thresholds value") for t in iou_thresholds]
    areas, subsets = {}, {}
    for name, value in dict(area_ranges).items():
        low, high = (float(v) for v in check_entry("extra_area_ranges", name, value, "[low, high]", (2,)))
        if not low < high:
            raise ValueError(f"{where}: extra_area_ranges[{name!r}] has low {low} >= high {high}")
        areas[name] = [low, high]
    for name, value in dict(slices).items():
        form = "[attribute, low, high(, IoU threshold or None(, 'AP' or 'AR'))]"
        value = check_entry("gt_slices", name, value, form, (3, 4, 5))
        low, high = float(value[1]), float(value[2])
        if not low < high:
            raise ValueError(f"{where}: gt_slices[{name!r}] has low {low} >= high {high}")
        iou = value[3] if len(value) >= 4 else None
        iou = None if iou is None else check_iou(float(iou), f"gt_slices[{name!r}] IoU threshold")
        kind = value[4] if len(value) == 5 else "AP"
        if kind not in ("AP", "AR"):
            raise ValueError(f"{where}: gt_slices[{name!r}] reads {kind!r}; expected 'AP' or 'AR'")
        subsets[name] = [str(value[0]), low, high, iou, kind]
    return ious, areas, subsets


def _small_table(d: dict) -> str:
    """A one-row table: metric names as headers."""
    return tabulate(
        [list(d.values())], headers=list(d.keys()), tablefmt="pipe", floatfmt=".3f", numalign="left", stralign="center"
    )
