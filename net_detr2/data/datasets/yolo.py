"""YOLO-format datasets (images/ + labels/ with ``class cx cy w h`` normalised lines), e.g. the Aquarium set."""
from __future__ import annotations

import logging
import os
from typing import Sequence

from PIL import Image

from net_detr2.structures import BoxMode

from ..catalog import DatasetCatalog, MetadataCatalog

__all__ = ["load_yolo_instances", "read_yolo_class_names", "register_yolo_instances"]

logger = logging.getLogger(__name__)

_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def read_yolo_class_names(data_yaml: str) -> list[str]:
    """The ``names`` list of a YOLO ``data.yaml`` (checked against ``nc`` when present)."""
    import yaml

    if not os.path.isfile(data_yaml):
        raise FileNotFoundError(f"YOLO data.yaml not found: {data_yaml}")
    with open(data_yaml) as f:
        cfg = yaml.safe_load(f)
    names = cfg.get("names") if isinstance(cfg, dict) else None
    if isinstance(names, dict):  # newer YOLO files: {0: name, 1: name}
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list) or not names:
        raise ValueError(f"{data_yaml}: no 'names' list")
    if "nc" in cfg and int(cfg["nc"]) != len(names):
        raise ValueError(f"{data_yaml}: nc={cfg['nc']} but {len(names)} names")
    return [str(n) for n in names]


def _image_size(path: str) -> tuple[int, int]:
    """(height, width) after EXIF orientation, read from the header only."""
    with Image.open(path) as im:
        w, h = im.size
        orientation = im.getexif().get(0x0112, 1)
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: exif_transpose swaps the sides
        w, h = h, w
    return h, w


def load_yolo_instances(image_dir: str, label_dir: str, class_names: Sequence[str]) -> list[dict]:
    """One dict per image of ``image_dir`` (sorted by name); labels from ``label_dir/<stem>.txt``.

    A line ``c cx cy w h`` (fractions of the image width/height) becomes an ``XYXY_ABS`` box; a missing
    label file means no objects. ``image_id`` is the image's index in sorted order.
    Raises naming the file and line for malformed lines or class indices out of range.
    """
    for d in (image_dir, label_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError(f"YOLO dataset directory not found: {d}")
    files = sorted(f for f in os.listdir(image_dir) if f.lower().endswith(_IMAGE_EXTS))
    dicts = []
    for idx, fname in enumerate(files):
        path = os.path.join(image_dir, fname)
        h, w = _image_size(path)
        label_file = os.path.join(label_dir, os.path.splitext(fname)[0] + ".txt")
        annos = []
        if os.path.isfile(label_file):
            with open(label_file) as f:
                for lineno, line in enumerate(f, 1):
                    parts = line.split()
                    if not parts:
                        continue
                    if len(parts) != 5:
                        raise ValueError(f"{label_file}:{lineno}: expected 'class cx cy w h', got {line.strip()!r}")
                    c = int(float(parts[0]))
                    if not 0 <= c < len(class_names):
                        raise ValueError(f"{label_file}:{lineno}: class index {c} out of range [0, {len(class_names)})")
                    cx, cy, bw, bh = (float(v) for v in parts[1:])
                    annos.append({
                        "bbox": [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h],
                        "bbox_mode": BoxMode.XYXY_ABS,
                        "category_id": c,
                        "iscrowd": 0,
                    })
        dicts.append({"file_name": path, "height": h, "width": w, "image_id": idx, "annotations": annos})
    logger.info("Loaded %d images in YOLO format from %s", len(dicts), image_dir)
    return dicts


def register_yolo_instances(name: str, root: str, split: str, data_yaml: str | None = None,
                            evaluator_type: str = "coco") -> None:
    """Register ``root/<split>/{images,labels}`` with class names from ``data_yaml`` (default
    ``root/data.yaml``), read when the dataset is first asked for."""
    data_yaml = data_yaml or os.path.join(root, "data.yaml")
    image_dir = os.path.join(root, split, "images")
    label_dir = os.path.join(root, split, "labels")

    def _load():
        names = read_yolo_class_names(data_yaml)
        meta = MetadataCatalog.get(name)
        meta.thing_classes = names
        return load_yolo_instances(image_dir, label_dir, names)

    DatasetCatalog.register(name, _load)
    meta = MetadataCatalog.get(name).set(evaluator_type=evaluator_type, image_root=image_dir, dirname=root, split=split)
    if os.path.isfile(data_yaml):
        meta.thing_classes = read_yolo_class_names(data_yaml)
