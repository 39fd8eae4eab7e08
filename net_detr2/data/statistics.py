"""Per-class and box-size statistics of a dataset (``list[dict]`` in detectron2's format)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from net_detr2.structures import BoxMode

__all__ = ["SIZE_RANGES", "DatasetStatistics", "dataset_statistics"]

# COCO's area ranges (pixels^2), applied here to the box area w * h in the original image.
SIZE_RANGES = {"small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, float("inf"))}


@dataclass
class DatasetStatistics:
    """Counts of a dataset; per-class arrays are indexed by contiguous class id."""

    class_names: list[str]
    num_images: int
    num_images_without_boxes: int
    instances: np.ndarray  # (K,) non-crowd boxes per class
    images_with_class: np.ndarray  # (K,) images holding at least one box of the class
    sizes: np.ndarray  # (K, 3) boxes per class that are small / medium / large
    num_crowd: int
    box_sqrt_areas: np.ndarray = field(repr=False)  # (N,) sqrt(w * h) of every non-crowd box
    box_classes: np.ndarray = field(repr=False)  # (N,) their classes

    @property
    def total_instances(self) -> int:
        return int(self.instances.sum())

    def size_shares(self) -> np.ndarray:
        """(3,) fractions of all boxes that are small / medium / large (zeros when there are no boxes)."""
        total = self.sizes.sum()
        return self.sizes.sum(axis=0) / total if total else np.zeros(3)

    def table_rows(self) -> list[list]:
        """Rows ``[class, instances, images, small, medium, large, small %, medium %, large %]`` and a total row."""
        rows = []
        for k, name in enumerate(self.class_names):
            n = int(self.instances[k])
            shares = self.sizes[k] / n * 100 if n else np.zeros(3)
            rows.append([name, n, int(self.images_with_class[k]), *map(int, self.sizes[k]), *shares.round(1)])
        shares = self.size_shares() * 100
        rows.append(["total", self.total_instances, self.num_images, *map(int, self.sizes.sum(0)), *shares.round(1)])
        return rows

    TABLE_HEADERS = ["class", "instances", "images", "small", "medium", "large", "small %", "medium %", "large %"]


def _xyxy(anno: dict, height: int | None, width: int | None) -> np.ndarray:
    mode = BoxMode(anno["bbox_mode"])
    kwargs = {"image_size": (height, width)} if mode in (BoxMode.XYXY_REL, BoxMode.XYWH_REL) else {}
    return np.asarray(BoxMode.convert(list(anno["bbox"]), mode, BoxMode.XYXY_ABS, **kwargs), dtype=np.float64)


def dataset_statistics(dataset_dicts: Sequence[dict], class_names: Sequence[str]) -> DatasetStatistics:
    """Count images, boxes per class, images per class and small / medium / large boxes (COCO's ranges on
    the box area in the original image). Crowd boxes are counted apart and left out of everything else.

    Raises ``ValueError`` naming the image when a box's class is outside ``class_names``.
    """
    k = len(class_names)
    boxes, classes, image_of_box = [], [], []
    num_crowd = empty = 0
    for i, d in enumerate(dataset_dicts):
        annos = [a for a in d.get("annotations", []) if not a.get("iscrowd", 0)]
        num_crowd += len(d.get("annotations", [])) - len(annos)
        if not annos:
            empty += 1
        for a in annos:
            c = int(a["category_id"])
            if not 0 <= c < k:
                raise ValueError(
                    f"dataset_statistics: {d.get('file_name', f'image {i}')} has a box of class {c}, "
                    f"outside the {k} classes {list(class_names)}"
                )
            boxes.append(_xyxy(a, d.get("height"), d.get("width")))
            classes.append(c)
            image_of_box.append(i)
    boxes_np = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    classes_np = np.asarray(classes, dtype=np.int64)
    areas = np.clip(boxes_np[:, 2] - boxes_np[:, 0], 0, None) * np.clip(boxes_np[:, 3] - boxes_np[:, 1], 0, None)
    size_index = np.searchsorted([SIZE_RANGES["medium"][0], SIZE_RANGES["large"][0]], areas, side="right")
    sizes = np.zeros((k, 3), dtype=np.int64)
    np.add.at(sizes, (classes_np, size_index), 1)
    pairs = np.unique(np.stack([np.asarray(image_of_box, dtype=np.int64), classes_np], axis=1), axis=0)
    return DatasetStatistics(
        class_names=list(class_names),
        num_images=len(dataset_dicts),
        num_images_without_boxes=empty,
        instances=np.bincount(classes_np, minlength=k),
        images_with_class=np.bincount(pairs[:, 1], minlength=k) if len(pairs) else np.zeros(k, dtype=np.int64),
        sizes=sizes,
        num_crowd=num_crowd,
        box_sqrt_areas=np.sqrt(areas),
        box_classes=classes_np,
    )
