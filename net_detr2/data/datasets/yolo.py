"""YOLO-format datasets: ``<root>/<split>/images/*`` with ``<root>/<split>/labels/<stem>.txt`` holding one
``class cx cy w h`` line per object (fractions of the image width/height), class names from ``data.yaml``.

This is the layout Roboflow, YOLOv5/v8 and most labelling tools export, e.g. the Aquarium photo set.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

from net_detr2.data.catalog import DatasetCatalog, MetadataCatalog
from net_detr2.data.detection_utils import open_image
from net_detr2.structures import BoxMode

__all__ = ["load_yolo_instances", "read_yolo_class_names", "register_yolo_dataset"]

logger = logging.getLogger(__name__)

_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
# Exports round coordinates, so a box may overshoot the image by a hair; more than this is a labelling error.
_EDGE_TOLERANCE = 1e-3
# A box with a side of at most one pixel (in the stored image) is a stray click of the labelling tool.
_MIN_BOX_SIDE_PX = 1.0


def read_yolo_class_names(data_yaml: str) -> list[str]:
    """The ``names`` of a YOLO ``data.yaml`` (a list, or a ``{index: name}`` dict), checked against ``nc``."""
    import yaml

    if not os.path.isfile(data_yaml):
        raise FileNotFoundError(
            f"YOLO data.yaml not found: {data_yaml} (give class_names explicitly, or add a data.yaml with 'names')"
        )
    with open(data_yaml) as f:
        cfg = yaml.safe_load(f)
    names = cfg.get("names") if isinstance(cfg, dict) else None
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list) or not names:
        raise ValueError(f"{data_yaml}: no 'names' list")
    if "nc" in cfg and int(cfg["nc"]) != len(names):
        raise ValueError(f"{data_yaml}: nc={cfg['nc']} but {len(names)} names")
    return [str(n) for n in names]


def _image_size(path: str) -> tuple[int, int]:
    """(height, width) after EXIF orientation (as `read_image` returns the pixels), from the header only."""
    with open_image(path) as im:
        w, h = im.size
        try:
            orientation = im.getexif().get(0x0112, 1)
        except (OSError, SyntaxError, ValueError) as e:  # PIL raises SyntaxError for some corrupt headers
            raise OSError(f"Cannot read image {path}: {e}") from e
    if orientation in (5, 6, 7, 8):  # a 90-degree rotation: the sides swap
        w, h = h, w
    return h, w


def _read_label_lines(label_file: str) -> list[str]:
    """The lines of a YOLO label file, which must be UTF-8 text (an error names the file and the bad byte)."""
    with open(label_file, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8-sig").split("\n")  # a BOM is tolerated; "\r" is stripped with the spaces
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ValueError(
            f"{label_file}:{line}: not a UTF-8 text label file (byte {raw[e.start]:#04x} at offset {e.start}); "
            "expected lines 'class cx cy w h'"
        ) from None


def _parse_label_line(line: str, label_file: str, lineno: int, num_classes: int) -> tuple[int, list[float]]:
    """``(class, [cx, cy, w, h])`` of one line; raises naming ``label_file:lineno`` when malformed."""
    parts = line.split()
    where = f"{label_file}:{lineno}"
    if len(parts) != 5:
        raise ValueError(f"{where}: expected 5 fields 'class cx cy w h', got {line.strip()!r}")
    try:
        c = float(parts[0])
        coords = [float(v) for v in parts[1:]]
    except ValueError as e:
        raise ValueError(f"{where}: not a number in {line.strip()!r}") from e
    if c != int(c) or not all(math.isfinite(v) for v in coords):
        raise ValueError(f"{where}: class must be an integer and coordinates finite, got {line.strip()!r}")
    if not 0 <= c < num_classes:
        raise ValueError(f"{where}: class id {int(c)} is not one of the {num_classes} classes (0..{num_classes - 1})")
    return int(c), coords


def load_yolo_instances(image_dir: str, label_dir: str, class_names: Sequence[str]) -> list[dict]:
    """One dataset dict per image of ``image_dir`` (sorted by file name; ``image_id`` = index in that order).

    Boxes become ``XYXY_ABS`` in the image's (EXIF-oriented) pixels, ``category_id`` = the YOLO class index.
    A missing or empty label file is an image without objects. Boxes reaching outside the image by more than
    rounding, and boxes with a side of at most one pixel, are dropped, and the drops are logged with counts.

    Raises:
        FileNotFoundError: a directory is missing.
        ValueError: a label file that is not UTF-8 text, a malformed line, or a class id outside
            ``class_names`` (naming the file and line).
        UnreadableImageError: an image that cannot be opened or is over PIL's pixel limit (naming it).
    """
    for d in (image_dir, label_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError(f"YOLO dataset directory not found: {d}")
    files = sorted(f for f in os.listdir(image_dir) if f.lower().endswith(_IMAGE_EXTS))
    if not files:
        raise FileNotFoundError(f"No images ({', '.join(_IMAGE_EXTS)}) in {image_dir}")
    dicts = []
    dropped = {"outside the image": [], "degenerate (a side <= 1 px)": []}
    for idx, fname in enumerate(files):
        path = os.path.join(image_dir, fname)
        h, w = _image_size(path)
        label_file = os.path.join(label_dir, os.path.splitext(fname)[0] + ".txt")
        annos = []
        if os.path.isfile(label_file):
            for lineno, line in enumerate(_read_label_lines(label_file), 1):
                if not line.strip():
                    continue
                c, (cx, cy, bw, bh) = _parse_label_line(line, label_file, lineno, len(class_names))
                x0, y0, x1, y1 = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2
                if min(x0, y0) < -_EDGE_TOLERANCE or max(x1, y1) > 1 + _EDGE_TOLERANCE:
                    dropped["outside the image"].append(f"{label_file}:{lineno}")
                    continue
                box = [max(x0, 0.0) * w, max(y0, 0.0) * h, min(x1, 1.0) * w, min(y1, 1.0) * h]
                if min(box[2] - box[0], box[3] - box[1]) <= _MIN_BOX_SIDE_PX:
                    dropped["degenerate (a side <= 1 px)"].append(f"{label_file}:{lineno}")
                    continue
                annos.append({"bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "category_id": c, "iscrowd": 0})
        dicts.append({"file_name": path, "height": h, "width": w, "image_id": idx, "annotations": annos})
    num_boxes = sum(len(d["annotations"]) for d in dicts)
    logger.info("Loaded %d images with %d boxes in YOLO format from %s", len(dicts), num_boxes, image_dir)
    for why, where in dropped.items():
        if where:
            logger.warning("Dropped %d boxes %s in %s, e.g. %s", len(where), why, label_dir, ", ".join(where[:3]))
    return dicts


def register_yolo_dataset(
    name: str, root: str, split: str, class_names: Sequence[str] | None = None, evaluator_type: str = "coco"
) -> None:
    """Register ``root/split/{images,labels}`` as ``name``; read when the dataset is first asked for.

    Args:
        class_names: the names of class ids 0..K-1; default: the ``names`` of ``root/data.yaml``.
        evaluator_type: ``"coco"`` (box AP on the fly from the dicts) or ``"pascal_voc"``.
    """
    data_yaml = os.path.join(root, "data.yaml")
    image_dir = os.path.join(root, split, "images")
    label_dir = os.path.join(root, split, "labels")

    def names() -> list[str]:
        return list(class_names) if class_names is not None else read_yolo_class_names(data_yaml)

    def load() -> list[dict]:
        thing_classes = names()
        meta.thing_classes = thing_classes
        return load_yolo_instances(image_dir, label_dir, thing_classes)

    meta = MetadataCatalog.get(name)  # before registering: `load` captures it
    DatasetCatalog.register(name, load)
    meta.set(evaluator_type=evaluator_type, image_root=image_dir, dirname=root, split=split)
    # class names are wanted before the dataset is (by evaluators, the Visualizer): read the small yaml now
    if class_names is not None or os.path.isfile(data_yaml):
        meta.thing_classes = names()
