"""COCO-format json (instances) -> detectron2 dataset dicts, and registering such datasets."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Sequence

from net_detr2.data.catalog import DatasetCatalog, MetadataCatalog
from net_detr2.structures import BoxMode

__all__ = ["load_coco_json", "register_coco_instances"]

logger = logging.getLogger(__name__)


def _check_exists(path: str, what: str, dataset_name: str | None) -> None:
    if not os.path.exists(path):
        who = f"Dataset '{dataset_name}': " if dataset_name else ""
        raise FileNotFoundError(
            f"{who}{what} not found: {path} (see datasets/README.md for the expected layout; the root of the "
            f"built-in datasets is $NET_DETR2_DATASETS, default ./datasets)"
        )


def _where(json_file: str, kind: str, index: int, record: object) -> str:
    """``"<json>: image #3 (id 17)"``: how errors point at one record of a COCO json."""
    rid = record.get("id") if isinstance(record, dict) else None
    return f"{json_file}: {kind} #{index}" + (f" (id {rid!r})" if rid is not None else "")


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_records(json_file: str, data: dict) -> None:
    """Every category, image and annotation has the fields the loader reads, of the right types; errors name
    the json file and the record (its index in its list and its id)."""
    for key in ("images", "categories", "annotations"):
        if key in data and not isinstance(data[key], list):
            raise ValueError(f"{json_file}: '{key}' is a {type(data[key]).__name__}, expected a list")
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or "name" not in cat:
            raise ValueError(f"{_where(json_file, 'category', i, cat)} needs an integer 'id' and a 'name': {cat!r}")
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict):
            raise ValueError(f"{_where(json_file, 'image', i, img)} is a {type(img).__name__}, expected an object")
        missing = [k for k in ("id", "file_name", "height", "width") if k not in img]
        if missing:
            raise ValueError(f"{_where(json_file, 'image', i, img)} has no {', '.join(map(repr, missing))}")
        if not isinstance(img["id"], (int, str)) or isinstance(img["id"], bool):
            raise ValueError(f"{_where(json_file, 'image', i, img)}: 'id' must be an integer or a string")
        if not isinstance(img["file_name"], str) or not img["file_name"]:
            raise ValueError(f"{_where(json_file, 'image', i, img)}: 'file_name' is {img['file_name']!r}")
        for k in ("height", "width"):
            v = img[k]
            if not (_is_number(v) and v > 0 and v == int(v)):  # 480.0 from some exporters is fine
                raise ValueError(f"{_where(json_file, 'image', i, img)}: '{k}' is {v!r}, expected a positive integer")
    for i, ann in enumerate(data.get("annotations", [])):
        if not isinstance(ann, dict):
            raise ValueError(f"{_where(json_file, 'annotation', i, ann)} is a {type(ann).__name__}, expected an object")
        if not isinstance(ann.get("image_id"), (int, str)) or isinstance(ann.get("image_id"), bool):
            problem = "has no 'image_id'" if "image_id" not in ann else f"has 'image_id' {ann['image_id']!r}"
            raise ValueError(f"{_where(json_file, 'annotation', i, ann)} {problem}")
        bbox = ann.get("bbox")
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            raise ValueError(
                f"{_where(json_file, 'annotation', i, ann)} of image {ann['image_id']!r} has a malformed bbox "
                f"{bbox!r}: expected [x, y, width, height], four finite numbers"
            )


def load_coco_json(
    json_file: str, image_root: str, dataset_name: str | None = None, extra_annotation_keys: Sequence[str] | None = None
) -> list[dict]:
    """Read a COCO instances json into ``list[dict]`` (one per image, every image of the json kept).

    Each dict: ``file_name`` (image_root joined with the json's file name), ``height``, ``width``,
    ``image_id`` and ``annotations``: a list of ``{"bbox": [x, y, w, h], "bbox_mode": BoxMode.XYWH_ABS,
    "category_id", "iscrowd", + extra_annotation_keys}``.

    When ``dataset_name`` is given (as in detectron2), its metadata gets ``thing_classes`` (category names in
    increasing id order) and ``thing_dataset_id_to_contiguous_id``, and the returned ``category_id`` are the
    contiguous ids ``0..K-1``; without a name, the json's ids are returned unchanged.

    Images without annotations are kept (``get_detection_dataset_dicts(filter_empty=True)`` drops them
    for training). Raises naming the json file and the record (its index and id) for a missing file, an image
    without ``id``/``file_name``/``height``/``width`` (positive integers), an annotation without ``image_id``,
    a bbox that is not four finite numbers, or a ``category_id`` that is not among the json's categories.
    """
    _check_exists(json_file, "COCO annotation file", dataset_name)
    _check_exists(image_root, "image directory", dataset_name)
    start = time.perf_counter()
    with open(json_file) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{json_file} is not valid json: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"{json_file}: holds a {type(data).__name__}, expected a COCO instances object")
    for key in ("images", "categories"):
        if key not in data:
            raise KeyError(f"{json_file}: missing the '{key}' list of a COCO instances file")
    _check_records(json_file, data)
    cats = sorted(data["categories"], key=lambda c: c["id"])
    cat_ids = [c["id"] for c in cats]
    if len(set(cat_ids)) != len(cat_ids):
        raise ValueError(f"{json_file}: duplicate category ids in {cat_ids}")
    id_map = None
    if dataset_name is not None:
        meta = MetadataCatalog.get(dataset_name)
        thing_classes = [c["name"] for c in cats]
        id_map = {v: i for i, v in enumerate(cat_ids)}
        meta.thing_classes = thing_classes
        meta.thing_dataset_id_to_contiguous_id = id_map
    known = set(cat_ids)

    anns_per_image: dict = {}
    for ann in data.get("annotations", []):
        anns_per_image.setdefault(ann["image_id"], []).append(ann)
    image_ids = [img["id"] for img in data["images"]]
    if len(set(image_ids)) != len(image_ids):
        dups = sorted((i for i, n in Counter(image_ids).items() if n > 1), key=str)
        raise ValueError(f"{json_file}: duplicate image ids {dups[:10]}")
    orphan = set(anns_per_image) - set(image_ids)
    if orphan:
        raise ValueError(f"{json_file}: annotations refer to image ids not in 'images': {sorted(orphan)[:10]}")

    ann_keys = ["iscrowd", "bbox", "category_id"] + list(extra_annotation_keys or [])
    dataset_dicts = []
    for img in data["images"]:
        record = {
            "file_name": os.path.join(image_root, img["file_name"]),
            "height": int(img["height"]),
            "width": int(img["width"]),
            "image_id": img["id"],
        }
        objs = []
        for ann in anns_per_image.get(img["id"], []):
            if ann.get("ignore", 0) != 0:
                raise ValueError(
                    f"{json_file}: annotation {ann.get('id')} of image {img['file_name']} has 'ignore' set; "
                    "use iscrowd instead"
                )
            cid = ann.get("category_id")
            if cid not in known:
                raise ValueError(
                    f"{json_file}: image {img['file_name']} (id {img['id']}) has an annotation with category_id "
                    f"{cid}, which is not among the categories {cat_ids}"
                )
            obj = {k: ann[k] for k in ann_keys if k in ann}
            obj.setdefault("iscrowd", 0)
            obj["bbox"] = [float(v) for v in ann["bbox"]]  # checked by _check_records
            obj["bbox_mode"] = BoxMode.XYWH_ABS
            if id_map is not None:
                obj["category_id"] = id_map[cid]
            objs.append(obj)
        record["annotations"] = objs
        dataset_dicts.append(record)
    logger.info(
        "Loaded %d images in COCO format from %s in %.2fs", len(dataset_dicts), json_file, time.perf_counter() - start
    )
    return dataset_dicts


def register_coco_instances(name: str, metadata: dict, json_file: str, image_root: str) -> None:
    """Register a COCO-format detection dataset under ``name``.

    The metadata gets ``json_file``, ``image_root``, ``evaluator_type="coco"`` (unless ``metadata`` sets
    another) and ``metadata``'s entries.
    """
    if not isinstance(name, str):
        raise TypeError(f"register_coco_instances: name must be a str, got {name!r}")
    DatasetCatalog.register(name, lambda: load_coco_json(json_file, image_root, name))
    MetadataCatalog.get(name).set(
        **{"evaluator_type": "coco", **metadata, "json_file": json_file, "image_root": image_root}
    )
