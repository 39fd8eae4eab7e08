"""COCO-format json (instances) -> detectron2 dataset dicts, and registering such datasets."""

from __future__ import annotations

import json
import logging
import os
import time
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
    for training). Raises naming the file/image/id at fault for a missing file, an annotation whose
    ``category_id`` is not among the json's categories, or a malformed bbox.
    """
    _check_exists(json_file, "COCO annotation file", dataset_name)
    _check_exists(image_root, "image directory", dataset_name)
    start = time.perf_counter()
    with open(json_file) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{json_file} is not valid json: {e}") from e
    for key in ("images", "categories"):
        if key not in data:
            raise KeyError(f"{json_file}: missing the '{key}' list of a COCO instances file")
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
        raise ValueError(f"{json_file}: duplicate image ids")
    orphan = set(anns_per_image) - set(image_ids)
    if orphan:
        raise ValueError(f"{json_file}: annotations refer to image ids not in 'images': {sorted(orphan)[:10]}")

    ann_keys = ["iscrowd", "bbox", "category_id"] + list(extra_annotation_keys or [])
    dataset_dicts = []
    for img in data["images"]:
        record = {
            "file_name": os.path.join(image_root, img["file_name"]),
            "height": img["height"],
            "width": img["width"],
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
            bbox = ann.get("bbox")
            if bbox is None or len(bbox) != 4:
                raise ValueError(
                    f"{json_file}: image {img['file_name']} (id {img['id']}): annotation "
                    f"{ann.get('id')} has a malformed bbox {bbox!r}"
                )
            obj = {k: ann[k] for k in ann_keys if k in ann}
            obj.setdefault("iscrowd", 0)
            obj["bbox"] = [float(v) for v in bbox]
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
