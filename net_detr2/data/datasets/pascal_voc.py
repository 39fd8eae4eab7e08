"""Pascal VOC (Annotations/*.xml + ImageSets/Main/<split>.txt) -> detectron2 dataset dicts."""

from __future__ import annotations

import logging
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from net_detr2.data.catalog import DatasetCatalog, MetadataCatalog
from net_detr2.structures import BoxMode

__all__ = ["load_voc_instances", "register_pascal_voc", "CLASS_NAMES"]

logger = logging.getLogger(__name__)

CLASS_NAMES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


def _text(node, tag: str, xml_file: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None:
        raise ValueError(f"{xml_file}: missing <{tag}>")
    return child.text.strip()


def load_voc_instances(dirname: str, split: str, class_names: Sequence[str] = CLASS_NAMES) -> list[dict]:
    """Load the ``split`` of a VOC-style directory.

    Boxes are ``XYXY_ABS``; VOC's 1-based inclusive pixel indices become detectron2's frame by
    ``x1 - 1, y1 - 1`` (``x2, y2`` unchanged). Every object is kept, with ``"difficult"`` (0/1) as a field.
    ``image_id`` is the file id string. Raises naming the file for a missing file or an unknown class.
    """
    split_file = os.path.join(dirname, "ImageSets", "Main", split + ".txt")
    if not os.path.isfile(split_file):
        raise FileNotFoundError(f"VOC split file not found: {split_file} (see datasets/README.md for the layout)")
    with open(split_file) as f:
        fileids = [line.strip() for line in f if line.strip()]
    class_index = {c: i for i, c in enumerate(class_names)}
    start = time.perf_counter()
    dicts = []
    for fileid in fileids:
        anno_file = os.path.join(dirname, "Annotations", fileid + ".xml")
        jpeg_file = os.path.join(dirname, "JPEGImages", fileid + ".jpg")
        if not os.path.isfile(anno_file):
            raise FileNotFoundError(f"VOC annotation file not found: {anno_file} (listed in {split_file})")
        try:
            tree = ET.parse(anno_file)
        except ET.ParseError as e:
            raise ValueError(f"Cannot parse VOC annotation {anno_file}: {e}") from e
        size = tree.find("size")
        if size is None:
            raise ValueError(f"{anno_file}: missing <size>")
        r = {
            "file_name": jpeg_file,
            "image_id": fileid,
            "height": int(float(_text(size, "height", anno_file))),
            "width": int(float(_text(size, "width", anno_file))),
        }
        instances = []
        for obj in tree.findall("object"):
            cls = _text(obj, "name", anno_file)
            if cls not in class_index:
                raise ValueError(f"{anno_file}: unknown class '{cls}' (known: {list(class_names)})")
            difficult_node = obj.find("difficult")
            difficult = int(difficult_node.text) if difficult_node is not None and difficult_node.text else 0
            bndbox = obj.find("bndbox")
            if bndbox is None:
                raise ValueError(f"{anno_file}: object '{cls}' has no <bndbox>")
            bbox = [float(_text(bndbox, k, anno_file)) for k in ("xmin", "ymin", "xmax", "ymax")]
            # VOC pixel indices are 1-based and inclusive; detectron2's frame has pixel i covering [i, i+1)
            bbox[0] -= 1.0
            bbox[1] -= 1.0
            instances.append(
                {"category_id": class_index[cls], "bbox": bbox, "bbox_mode": BoxMode.XYXY_ABS, "difficult": difficult}
            )
        r["annotations"] = instances
        dicts.append(r)
    logger.info("Loaded %d images of VOC %s/%s in %.2fs", len(dicts), dirname, split, time.perf_counter() - start)
    return dicts


def register_pascal_voc(
    name: str, dirname: str, split: str, year: int, class_names: Sequence[str] = CLASS_NAMES
) -> None:
    """Register a VOC-style dataset; metadata: thing_classes, dirname, year, split, evaluator_type="pascal_voc"."""
    DatasetCatalog.register(name, lambda: load_voc_instances(dirname, split, class_names))
    MetadataCatalog.get(name).set(
        thing_classes=list(class_names), dirname=dirname, year=year, split=split, evaluator_type="pascal_voc"
    )
