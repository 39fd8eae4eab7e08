"""`shapes`: a small synthetic detection dataset, generated deterministically on first use.

Six classes (circle, square, triangle, star, ring, cross) in random colours on cluttered backgrounds
(gradients, low-frequency texture, noise, lines and elongated blobs that are *not* objects), with partial
occlusion between objects. Object sizes are log-uniform in [6, 200] px, so about half are COCO "small"
(< 32 px). Images are 320 px wide and 256..400 px high (both orientations occur).

Registered names: ``shapes_train`` (400 images) and ``shapes_val`` (100 images) as COCO json, and
``shapes_voc_val`` (the same val images through the VOC loader and a generated VOC layout).

Every image is drawn from its own ``np.random.RandomState(seed)`` with a fixed per-image seed, so the
first N images of a split are the same whatever the split size, and two generations give identical
files. The files go to ``$NET_DETR2_CACHE/shapes_v1`` (default ``~/.cache/net_detr2/shapes_v1``); they are
written to a temporary directory that is renamed into place, so concurrent first uses cannot leave a
half-written dataset behind.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from net_detr2.data.catalog import DatasetCatalog, MetadataCatalog

from .coco import load_coco_json
from .pascal_voc import load_voc_instances

__all__ = [
    "PLAIN_SHAPES",
    "ShapesVariant",
    "SHAPES_CLASSES",
    "SHAPES_VERSION",
    "shapes_root",
    "ensure_shapes_dataset",
    "generate_shapes_dataset",
    "render_shapes_image",
    "register_shapes",
]

logger = logging.getLogger(__name__)

SHAPES_CLASSES = ("circle", "square", "triangle", "star", "ring", "cross")
SHAPES_VERSION = "shapes_v1"
NUM_TRAIN = 400
NUM_VAL = 100
_SEED = 2024
_SPLIT_SEED_OFFSET = {"train": 0, "val": 1_000_000}
_MIN_SIZE, _MAX_SIZE = 6.0, 200.0
_WIDTH = 320
_HEIGHT_RANGE = (256, 400)
_JPEG_QUALITY = 92


def shapes_root(variant: ShapesVariant | None = None) -> Path:
    """Where a dataset of the family lives: ``$NET_DETR2_CACHE/<version>`` (default cache
    ``~/.cache/net_detr2``; version ``shapes_v1`` for the plain dataset)."""
    base = os.environ.get("NET_DETR2_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "net_detr2")
    return Path(base) / (variant.version if variant is not None else SHAPES_VERSION)


# ----------------------------------------------------------------------------------------------- drawing
def _unit_polygon(kind: str, rng: np.random.RandomState) -> np.ndarray:
    """Vertices (K, 2) of a polygonal shape around the origin, before scaling."""
    if kind == "square":
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    if kind == "triangle":
        a = np.deg2rad([90, 210, 330])
        return np.stack([np.cos(a), -np.sin(a)], axis=1)
    if kind == "star":
        inner = rng.uniform(0.38, 0.5)
        a = np.deg2rad(90 + 36 * np.arange(10))
        r = np.where(np.arange(10) % 2 == 0, 1.0, inner)
        return np.stack([r * np.cos(a), -r * np.sin(a)], axis=1)
    if kind == "cross":
        t = rng.uniform(0.28, 0.4)  # half arm width
        return np.array(
            [
                [-t, -1],
                [t, -1],
                [t, -t],
                [1, -t],
                [1, t],
                [t, t],
                [t, 1],
                [-t, 1],
                [-t, t],
                [-1, t],
                [-1, -t],
                [-t, -t],
            ],
            dtype=np.float64,
        )
    raise ValueError(kind)


def _shape_mask(kind: str, size: float, rng: np.random.RandomState) -> np.ndarray:
    """An anti-aliased uint8 mask (0..255) of one object whose larger box side is about ``size`` px.

    The mask is cropped to its tight extent (pixels >= 128), so its shape is the object's box.
    """
    stretch = rng.uniform(0.8, 1.25)  # mild anisotropy: boxes are not all square
    sx, sy = size * min(1.0, stretch), size * min(1.0, 1.0 / stretch)
    pad = 3
    cw, ch = int(math.ceil(sx)) + 2 * pad, int(math.ceil(sy)) + 2 * pad
    mask = np.zeros((ch, cw), dtype=np.uint8)
    shift = 4
    scale = 1 << shift
    cx, cy = cw / 2.0, ch / 2.0
    if kind in ("circle", "ring"):
        center = (int(round(cx * scale)), int(round(cy * scale)))
        axes = (max(int(round(sx / 2 * scale)), 1), max(int(round(sy / 2 * scale)), 1))
        cv2.ellipse(mask, center, axes, 0, 0, 360, 255, -1, cv2.LINE_AA, shift)
        if kind == "ring":
            f = rng.uniform(0.45, 0.65)
            inner = (max(int(round(axes[0] * f)), 1), max(int(round(axes[1] * f)), 1))
            cv2.ellipse(mask, center, inner, 0, 0, 360, 0, -1, cv2.LINE_AA, shift)
    else:
        pts = _unit_polygon(kind, rng)
        ang = rng.uniform(0, 2 * np.pi)
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        pts = pts @ rot.T
        lo, hi = pts.min(0), pts.max(0)
        pts = (pts - (lo + hi) / 2) / (hi - lo) * np.array([sx, sy]) + np.array([cx, cy])
        cv2.fillPoly(mask, [np.round(pts * scale).astype(np.int32)], 255, cv2.LINE_AA, shift)
    ys, xs = np.nonzero(mask >= 128)
    if len(xs) == 0:  # degenerate tiny shape: fall back to a filled dot
        mask[int(cy) - 1 : int(cy) + 2, int(cx) - 1 : int(cx) + 2] = 255
        ys, xs = np.nonzero(mask >= 128)
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _background_base(rng: np.random.RandomState, h: int, w: int) -> np.ndarray:
    """Float32 HxWx3 gradient plus low-frequency texture."""
    c0, c1 = rng.uniform(30, 225, size=(2, 3))
    ang = rng.uniform(0, 2 * np.pi)
    t = np.arange(w, dtype=np.float32)[None, :] * np.float32(np.cos(ang)) + np.arange(h, dtype=np.float32)[
        :, None
    ] * np.float32(np.sin(ang))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    img = c0.astype(np.float32)[None, None, :] + t[:, :, None] * (c1 - c0).astype(np.float32)[None, None, :]
    # low-frequency texture: a coarse random grid upsampled smoothly
    gh, gw = rng.randint(3, 10), rng.randint(3, 10)
    tex = rng.normal(0, rng.uniform(10, 35), size=(gh, gw, 3)).astype(np.float32)
    img += cv2.resize(tex, (w, h), interpolation=cv2.INTER_CUBIC)
    return img


def _background(rng: np.random.RandomState, h: int, w: int) -> np.ndarray:
    """Float32 HxWx3 cluttered background (before the final noise)."""
    img = _background_base(rng, h, w)
    # distractors: elongated blobs (aspect >= 3, never mistaken for a circle/ring) and random lines
    for _ in range(rng.randint(2, 9)):
        center = (int(rng.randint(0, w)), int(rng.randint(0, h)))
        a = rng.uniform(8, 60)
        axes = (int(a), max(int(a / rng.uniform(3, 8)), 1))
        color = tuple(float(v) for v in rng.uniform(0, 255, 3))
        cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1, cv2.LINE_AA)
    for _ in range(rng.randint(3, 13)):
        p1 = (int(rng.randint(-20, w + 20)), int(rng.randint(-20, h + 20)))
        p2 = (int(rng.randint(-20, w + 20)), int(rng.randint(-20, h + 20)))
        color = tuple(float(v) for v in rng.uniform(0, 255, 3))
        cv2.line(img, p1, p2, color, int(rng.randint(1, 4)), cv2.LINE_AA)
    return img


def _noise(rng: np.random.RandomState, shape: tuple, sigma: float) -> np.ndarray:
    """Zero-mean triangular noise of standard deviation ``sigma`` (difference of two uniform bytes:
    several times cheaper than ``rng.normal`` and visually the same)."""
    n = int(np.prod(shape))
    u = np.frombuffer(rng.bytes(2 * n), dtype=np.uint8).reshape(2, n).astype(np.float32)
    # the difference of two U{0..255} has standard deviation 255 / sqrt(6) ~ 104.1
    return ((u[0] - u[1]) * np.float32(sigma / 104.1)).reshape(shape)


def _overlap_fraction(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Fraction of each of ``others`` (N, 4) covered by ``box`` (4,), XYXY."""
    lt = np.maximum(box[:2], others[:, :2])
    rb = np.minimum(box[2:], others[:, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=1)
    area = (others[:, 2:] - others[:, :2]).prod(axis=1)
    return inter / np.maximum(area, 1e-6)


def render_shapes_image(seed: int) -> tuple[np.ndarray, list[dict]]:
    """Draw one image from ``RandomState(seed)``.

    Returns:
        image: HxWx3 uint8, BGR.
        objects: list of ``{"bbox": [x1, y1, x2, y2] (ints, XYXY, tight), "category_id": 0..5}`` in
            drawing order (later objects are on top and may hide up to half of an earlier one's box).
    """
    rng = np.random.RandomState(seed)
    h, w = int(rng.randint(_HEIGHT_RANGE[0], _HEIGHT_RANGE[1] + 1)), _WIDTH
    img = _background(rng, h, w)
    objects: list[dict] = []
    boxes = np.zeros((0, 4), dtype=np.float64)
    for _ in range(rng.randint(3, 13)):
        kind_id = int(rng.randint(len(SHAPES_CLASSES)))
        size = float(np.exp(rng.uniform(np.log(_MIN_SIZE), np.log(_MAX_SIZE))))
        mask = _shape_mask(SHAPES_CLASSES[kind_id], size, rng)
        mh, mw = mask.shape
        if mh >= h or mw >= w:
            continue
        placed = False
        for _try in range(10):
            x0, y0 = int(rng.randint(0, w - mw + 1)), int(rng.randint(0, h - mh + 1))
            box = np.array([x0, y0, x0 + mw, y0 + mh], dtype=np.float64)
            # the new object is drawn on top: it may cover at most half of any earlier object's box
            if len(boxes) == 0 or _overlap_fraction(box, boxes).max() <= 0.5:
                placed = True
                break
        if not placed:
            continue
        region = img[y0 : y0 + mh, x0 : x0 + mw]
        bg_mean = region.reshape(-1, 3).mean(0)
        for _c in range(20):  # a colour that stands out from the local background
            color = rng.uniform(0, 255, 3)
            if np.abs(color - bg_mean).sum() >= 120:
                break
        alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
        shade = rng.uniform(0.85, 1.15, size=(1, 1, 3)).astype(np.float32)
        region *= 1.0 - alpha
        region += alpha * (color.astype(np.float32)[None, None, :] * shade)
        boxes = np.concatenate([boxes, box[None]], axis=0)
        objects.append({"bbox": [int(v) for v in box], "category_id": kind_id})
    # a few thin foreground lines crossing objects, then sensor noise over everything
    for _ in range(rng.randint(0, 3)):
        p1 = (int(rng.randint(0, w)), int(rng.randint(0, h)))
        p2 = (int(rng.randint(0, w)), int(rng.randint(0, h)))
        cv2.line(img, p1, p2, tuple(float(v) for v in rng.uniform(0, 255, 3)), 1, cv2.LINE_AA)
    img += _noise(rng, img.shape, rng.uniform(3, 12))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), objects


# ----------------------------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class ShapesVariant:
    """One generated dataset of the ``shapes`` family: how to draw an image and how to file it.

    ``render(seed)`` returns ``(image BGR uint8, objects, image_extras)``: each object is
    ``{"bbox": [x1, y1, x2, y2], "category_id": 0..K-1}`` plus the ``attributes`` this variant records
    (written into the COCO annotations and the VOC objects); ``image_extras`` go into the COCO image entry.
    ``evaluation`` is put in the val split's metadata, where ``COCOEvaluator`` takes its extra metrics from
    (``extra_iou_thresholds``, ``extra_area_ranges``, ``gt_slices``).
    """

    name: str
    version: str
    classes: tuple[str, ...]
    render: Callable[[int], tuple[np.ndarray, list[dict], dict]]
    seed: int
    attributes: tuple[str, ...] = ()
    evaluation: dict = field(default_factory=dict)
    description: str = ""


def _render_plain(seed: int) -> tuple[np.ndarray, list[dict], dict]:
    img, objects = render_shapes_image(seed)
    return img, objects, {}


PLAIN_SHAPES = ShapesVariant(
    "shapes", SHAPES_VERSION, SHAPES_CLASSES, _render_plain, _SEED, description="net_detr2 synthetic shapes"
)


# ----------------------------------------------------------------------------------------------- writing
def _voc_xml(fileid: str, h: int, w: int, objects: list[dict], variant: ShapesVariant = PLAIN_SHAPES) -> str:
    """VOC annotation: 1-based inclusive pixel indices, i.e. xmin = x1 + 1, xmax = x2 for a [x1, x2) box."""
    objs = "".join(
        f"<object><name>{variant.classes[o['category_id']]}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult>" + "".join(f"<{a}>{o[a]}</{a}>" for a in variant.attributes) + "<bndbox>"
        f"<xmin>{o['bbox'][0] + 1}</xmin><ymin>{o['bbox'][1] + 1}</ymin>"
        f"<xmax>{o['bbox'][2]}</xmax><ymax>{o['bbox'][3]}</ymax></bndbox></object>"
        for o in objects
    )
    return (
        f"<annotation><folder>{variant.name}</folder><filename>{fileid}.jpg</filename><size><width>{w}</width>"
        f"<height>{h}</height><depth>3</depth></size><segmented>0</segmented>{objs}</annotation>\n"
    )


def _write_split(
    out: Path,
    split: str,
    num: int,
    image_dir: Path,
    seed: int,
    voc_dir: Path | None,
    variant: ShapesVariant = PLAIN_SHAPES,
) -> dict:
    image_dir.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    fileids = []
    for i in range(num):
        img, objects, extras = variant.render(seed + _SPLIT_SEED_OFFSET[split] + i)
        fileid = f"{split}_{i:06d}"
        h, w = img.shape[:2]
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"{variant.name}: cannot encode image {fileid}")
        (image_dir / f"{fileid}.jpg").write_bytes(buf.tobytes())
        image_id = i + 1
        images.append({"id": image_id, "file_name": f"{fileid}.jpg", "height": h, "width": w, **extras})
        for o in objects:
            x1, y1, x2, y2 = o["bbox"]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": o["category_id"] + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                    **{a: o[a] for a in variant.attributes},
                }
            )
        if voc_dir is not None:
            (voc_dir / "Annotations" / f"{fileid}.xml").write_text(_voc_xml(fileid, h, w, objects, variant))
            fileids.append(fileid)
    if voc_dir is not None:
        (voc_dir / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f + "\n" for f in fileids))
    coco = {
        "info": {"description": f"{variant.description} ({variant.version}), split {split}"},
        "images": images,
        "annotations": anns,
        "categories": [{"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(variant.classes)],
    }
    (out / "annotations").mkdir(exist_ok=True)
    (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    return coco


def generate_shapes_dataset(
    out_dir: str | os.PathLike,
    num_train: int = NUM_TRAIN,
    num_val: int = NUM_VAL,
    seed: int | None = None,
    variant: ShapesVariant = PLAIN_SHAPES,
) -> Path:
    """Write the dataset (``variant``, default the plain ``shapes``) to ``out_dir`` (which must not exist
    yet) atomically. ``seed`` defaults to the variant's own.

    Layout::

        out_dir/annotations/instances_{train,val}.json   (COCO, category ids 1..K)
        out_dir/train/train_000000.jpg ...
        out_dir/VOC/JPEGImages/val_000000.jpg ...        (the val images, shared by both val datasets)
        out_dir/VOC/Annotations/val_000000.xml ...
        out_dir/VOC/ImageSets/Main/val.txt

    If another process finished first, its copy is kept and this one is discarded.
    """
    seed = variant.seed if seed is None else seed
    out = Path(out_dir)
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        voc = tmp / "VOC"
        (voc / "Annotations").mkdir(parents=True)
        (voc / "ImageSets" / "Main").mkdir(parents=True)
        _write_split(tmp, "train", num_train, tmp / "train", seed, None, variant)
        _write_split(tmp, "val", num_val, voc / "JPEGImages", seed, voc, variant)
        try:
            os.rename(tmp, out)
        except OSError:
            if not out.exists():
                raise
            # another process won the race; its files are identical
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info(
        "Generated the %s dataset (%d train, %d val images) in %s in %.1fs",
        variant.name,
        num_train,
        num_val,
        out,
        time.perf_counter() - start,
    )
    return out


def ensure_shapes_dataset(root: str | os.PathLike | None = None, variant: ShapesVariant = PLAIN_SHAPES) -> Path:
    """Return the dataset directory, generating it first if needed."""
    root = Path(root) if root is not None else shapes_root(variant)
    if not (root / "annotations" / "instances_val.json").exists():
        generate_shapes_dataset(root, variant=variant)
    return root


def register_shapes(root: str | os.PathLike | None = None, variant: ShapesVariant = PLAIN_SHAPES) -> None:
    """Register ``<name>_train``, ``<name>_val`` and ``<name>_voc_val`` of ``variant`` (default: ``shapes_*``);
    the files are generated on first ``get``."""
    root = Path(root) if root is not None else shapes_root(variant)
    splits = {
        f"{variant.name}_train": (root / "annotations" / "instances_train.json", root / "train"),
        f"{variant.name}_val": (root / "annotations" / "instances_val.json", root / "VOC" / "JPEGImages"),
    }
    for name, (json_file, image_root) in splits.items():

        def _load(name=name, json_file=json_file, image_root=image_root):
            ensure_shapes_dataset(root, variant)
            # json_file is only announced once the file exists: an evaluator built before the first load
            # then converts the dataset dicts instead of failing on a missing file
            MetadataCatalog.get(name).set(json_file=str(json_file))
            return load_coco_json(str(json_file), str(image_root), name, extra_annotation_keys=variant.attributes)

        DatasetCatalog.register(name, _load)
        meta = MetadataCatalog.get(name).set(
            thing_classes=list(variant.classes), evaluator_type="coco", image_root=str(image_root)
        )
        if name.endswith("_val") and variant.evaluation:
            meta.set(**variant.evaluation)
        if json_file.exists():
            meta.json_file = str(json_file)

    def _load_voc():
        ensure_shapes_dataset(root, variant)
        return load_voc_instances(str(root / "VOC"), "val", variant.classes)

    DatasetCatalog.register(f"{variant.name}_voc_val", _load_voc)
    # year 2012: the VOC evaluator then uses the exact area under the PR curve, not the 11-point metric
    MetadataCatalog.get(f"{variant.name}_voc_val").set(
        thing_classes=list(variant.classes),
        dirname=str(root / "VOC"),
        split="val",
        year=2012,
        evaluator_type="pascal_voc",
    )
