"""Draw detections and dataset annotations on images.

Drawing is done with OpenCV directly on a uint8 RGB canvas: one ``cv2.rectangle`` per box and one
``cv2.putText`` per label, so hundreds of boxes cost milliseconds (no matplotlib figure per image).

Coordinates are those of the input image; ``scale`` only changes the size of the output canvas
(boxes are scaled with it). Labels get a filled background in the box's colour and black or white
text, whichever contrasts more. A label is placed *outside* the box, just above its top edge, so
that small objects stay visible under their labels; when there is no room above it goes just below
the box, and when there is no room either way (tiny images) against the image border on the
roomier side.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from net_detr2.structures import BoxMode
from net_detr2.utils.colormap import PALETTE_SIZE, colormap
from net_detr2.utils.eval_mode import eval_mode

__all__ = ["ColorMode", "VisImage", "Visualizer", "save_prediction_images"]

logger = logging.getLogger(__name__)

_FONT = cv2.FONT_HERSHEY_SIMPLEX
# Pixel height of FONT_HERSHEY_SIMPLEX capitals at fontScale=1 (cv2.getTextSize gives 22).
_FONT_BASE_PX = 22.0
_LABEL_PAD = 2


class ColorMode(Enum):
    """How instances are coloured.

    IMAGE: one palette colour per instance (by its index).
    SEGMENTATION: one colour per class (``metadata.thing_colors`` when present, else the palette
        indexed by class id), so the same class always looks the same.
    IMAGE_BW: like IMAGE, on a grey-scale copy of the image so the boxes stand out.
    """

    IMAGE = 0
    SEGMENTATION = 1
    IMAGE_BW = 2


def _meta_get(metadata: Any, key: str, default=None):
    """Read ``key`` from a Metadata object, a dict or None."""
    if metadata is None:
        return default
    if isinstance(metadata, dict):
        return metadata.get(key, default)
    try:
        return getattr(metadata, key)
    except (AttributeError, KeyError):
        return default


class VisImage:
    """The drawing canvas: an RGB uint8 image of the input's size times ``scale``."""

    def __init__(self, img: np.ndarray, scale: float = 1.0):
        """
        Args:
            img: HxWx3 uint8 RGB image (copied).
            scale: output size factor.
        """
        if scale <= 0:
            raise ValueError(f"VisImage: scale must be > 0, got {scale}")
        self.scale = float(scale)
        self.height, self.width = img.shape[:2]
        if self.scale != 1.0:
            out_w = max(int(round(self.width * self.scale)), 1)
            out_h = max(int(round(self.height * self.scale)), 1)
            interp = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
            self.canvas = cv2.resize(img, (out_w, out_h), interpolation=interp)
        else:
            self.canvas = np.ascontiguousarray(img).copy()

    def get_image(self) -> np.ndarray:
        """The drawn image: HxWx3 uint8 RGB (H, W scaled by ``scale``)."""
        return self.canvas

    def save(self, filepath: str | os.PathLike) -> None:
        """Write the image; the format follows the extension (use ``.png`` for lossless output)."""
        filepath = str(filepath)
        parent = os.path.dirname(filepath)
        if parent:
            os.makedirs(parent, exist_ok=True)
        try:
            ok = cv2.imwrite(filepath, self.canvas[:, :, ::-1])
        except cv2.error:
            ok = False
        if not ok:
            raise OSError(
                f"VisImage.save: could not write image to {filepath!r} (unknown extension or unwritable path)"
            )


class Visualizer:
    """Draws boxes and labels onto an RGB image (detectron2's ``Visualizer`` API, boxes only)."""

    def __init__(
        self, img_rgb: np.ndarray, metadata: Any = None, scale: float = 1.0, instance_mode: ColorMode = ColorMode.IMAGE
    ):
        """
        Args:
            img_rgb: HxWx3 (or HxW grey) image, RGB, values in 0..255 (uint8 or float).
            metadata: a dataset ``Metadata`` (or dict) giving ``thing_classes`` / ``thing_colors``.
            scale: size factor of the output image.
            instance_mode: see :class:`ColorMode`.
        """
        img = np.asarray(img_rgb)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] not in (3, 4):
            raise ValueError(f"Visualizer: expected an HxWx3 RGB image, got shape {img.shape}")
        img = np.clip(img[:, :, :3], 0, 255).astype(np.uint8)
        if instance_mode == ColorMode.IMAGE_BW:
            gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            img = np.repeat(gray[:, :, None], 3, axis=2)
        self.img = img
        self.metadata = metadata
        self._instance_mode = instance_mode
        self.output = VisImage(img, scale=scale)
        s = self.output.scale
        # Text height in output pixels: grows with the image, never below 10 px (readable), like detectron2.
        self._default_font_size = max(np.sqrt(self.output.height * self.output.width) // 90, 10 // s) * s
        self._line_width = max(int(round(self._default_font_size / 4)), 1)

    # ------------------------------------------------------------------ high level
    def draw_instance_predictions(self, predictions) -> VisImage:
        """Draw ``pred_boxes`` with "class score%" labels.

        Args:
            predictions: ``Instances`` with optional fields ``pred_boxes`` (Boxes, Nx4 XYXY in the
                input image's frame), ``scores`` (N,), ``pred_classes`` (N,).
        """
        has = predictions.has
        boxes = predictions.pred_boxes if has("pred_boxes") else None
        scores = predictions.scores if has("scores") else None
        classes = predictions.pred_classes if has("pred_classes") else None
        boxes_np = _to_numpy_boxes(boxes) if boxes is not None else np.zeros((0, 4), np.float32)
        classes_list = _to_list(classes)
        labels = _create_text_labels(classes_list, _to_list(scores), _meta_get(self.metadata, "thing_classes"))
        colors = self._instance_colors(classes_list, len(boxes_np))
        return self.overlay_instances(boxes=boxes_np, labels=labels, assigned_colors=colors)

    def draw_dataset_dict(self, dic: dict) -> VisImage:
        """Draw the boxes of a dataset dict's ``annotations`` (any ``bbox_mode``) with class labels."""
        annos = dic.get("annotations", None)
        if not annos:
            return self.output
        boxes = []
        for i, a in enumerate(annos):
            if "bbox" not in a or "bbox_mode" not in a:
                raise KeyError(
                    f"draw_dataset_dict: annotation {i} of {dic.get('file_name', '<dict>')!r} "
                    f"needs 'bbox' and 'bbox_mode', has keys {sorted(a)}"
                )
            mode = BoxMode(a["bbox_mode"])
            if mode in (BoxMode.XYXY_REL, BoxMode.XYWH_REL):
                box = BoxMode.convert(
                    list(a["bbox"]),
                    mode,
                    BoxMode.XYXY_ABS,
                    image_size=(dic.get("height", self.img.shape[0]), dic.get("width", self.img.shape[1])),
                )
            else:
                box = BoxMode.convert(list(a["bbox"]), mode, BoxMode.XYXY_ABS)
            boxes.append(box)
        classes = [a.get("category_id") for a in annos]
        names = _meta_get(self.metadata, "thing_classes")
        labels = _create_text_labels(classes if all(c is not None for c in classes) else None, None, names)
        if labels is not None:
            labels = [lab + (",crowd" if a.get("iscrowd", 0) else "") for lab, a in zip(labels, annos)]
        colors = self._instance_colors(classes if all(c is not None for c in classes) else None, len(boxes))
        return self.overlay_instances(boxes=np.asarray(boxes, dtype=np.float32), labels=labels, assigned_colors=colors)

    def overlay_instances(
        self,
        *,
        boxes=None,
        labels: Sequence[str] | None = None,
        assigned_colors: Sequence | None = None,
        alpha: float = 1.0,
    ) -> VisImage:
        """Draw N boxes with optional labels.

        Args:
            boxes: Boxes, tensor or array of shape (N, 4), XYXY_ABS in input-image pixels.
            labels: N strings or None.
            assigned_colors: N RGB colours (0..255, or 0..1 floats) or None for the palette.
            alpha: unused (boxes are opaque lines); kept for API compatibility.
        """
        boxes_np = _to_numpy_boxes(boxes) if boxes is not None else np.zeros((0, 4), np.float32)
        n = len(boxes_np)
        if labels is not None and len(labels) != n:
            raise ValueError(f"overlay_instances: {n} boxes but {len(labels)} labels")
        if assigned_colors is None:
            assigned_colors = self._instance_colors(None, n)
        if len(assigned_colors) != n:
            raise ValueError(f"overlay_instances: {n} boxes but {len(assigned_colors)} colours")
        if n == 0:
            return self.output
        colors = [_as_rgb255(c) for c in assigned_colors]
        # Big boxes first, so the edges of small ones are not painted over.
        areas = (boxes_np[:, 2] - boxes_np[:, 0]) * (boxes_np[:, 3] - boxes_np[:, 1])
        order = np.argsort(-areas, kind="stable")
        for i in order:
            self.draw_box(boxes_np[i], edge_color=colors[i])
        if labels is not None:
            # Labels after all boxes so that no box line runs through a label; small boxes' labels last (on top).
            for i in order:
                self._draw_box_label(boxes_np[i], labels[i], colors[i])
        return self.output

    # ------------------------------------------------------------------ primitives
    def draw_box(self, box_coord, edge_color=(0, 255, 0), line_width: int | None = None) -> VisImage:
        """Draw one rectangle. ``box_coord``: (x0, y0, x1, y1) in input-image pixels."""
        x0, y0, x1, y1 = self._to_canvas(box_coord)
        lw = self._line_width if line_width is None else max(int(line_width), 1)
        cv2.rectangle(self.output.canvas, (x0, y0), (x1, y1), _as_rgb255(edge_color), lw, lineType=cv2.LINE_8)
        return self.output

    def draw_text(
        self, text: str, position, color=(255, 255, 255), background=None, font_size: float | None = None
    ) -> VisImage:
        """Draw ``text`` with its top-left corner at ``position`` (input-image pixels)."""
        x, y = position
        x, y = int(round(x * self.output.scale)), int(round(y * self.output.scale))
        font_scale, thick = self._font(font_size)
        (tw, th), base = cv2.getTextSize(text, _FONT, font_scale, thick)
        if background is not None:
            cv2.rectangle(
                self.output.canvas,
                (x, y),
                (x + tw + 2 * _LABEL_PAD, y + th + base + 2 * _LABEL_PAD),
                _as_rgb255(background),
                -1,
            )
        cv2.putText(
            self.output.canvas,
            text,
            (x + _LABEL_PAD, y + _LABEL_PAD + th),
            _FONT,
            font_scale,
            _as_rgb255(color),
            thick,
            cv2.LINE_AA,
        )
        return self.output

    def get_output(self) -> VisImage:
        return self.output

    # ------------------------------------------------------------------ helpers
    def _font(self, font_size: float | None) -> tuple[float, int]:
        px = self._default_font_size if font_size is None else font_size * self.output.scale
        return px / _FONT_BASE_PX, max(int(round(px / 12)), 1)

    def _to_canvas(self, box) -> tuple[int, int, int, int]:
        s = self.output.scale
        x0, y0, x1, y1 = (float(v) * s for v in box)
        return int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))

    def _instance_colors(self, classes: list | None, n: int) -> list[np.ndarray]:
        if self._instance_mode == ColorMode.SEGMENTATION and classes is not None:
            thing_colors = _meta_get(self.metadata, "thing_colors")
            if thing_colors is not None:
                return [np.asarray(thing_colors[int(c)], dtype=np.float32) for c in classes]
            cmap = colormap(rgb=True)
            return [cmap[int(c) % PALETTE_SIZE] for c in classes]
        cmap = colormap(rgb=True)
        return [cmap[i % PALETTE_SIZE] for i in range(n)]

    def _draw_box_label(self, box, text: str, color) -> None:
        canvas = self.output.canvas
        H, W = canvas.shape[:2]
        x0, y0, x1, y1 = self._to_canvas(box)
        font_scale, thick = self._font(None)
        (tw, th), base = cv2.getTextSize(text, _FONT, font_scale, thick)
        lw_, lh = tw + 2 * _LABEL_PAD, th + base + 2 * _LABEL_PAD
        half_line = self._line_width // 2 + 1  # keep the label off the box's line
        if y0 - half_line - lh >= 0:  # above the box, outside it
            ly = y0 - half_line - lh
        elif y1 + half_line + lh <= H:  # below the box, outside it
            ly = y1 + half_line
        else:  # no room either side: against the image border on the roomier side (covers the box least)
            ly = 0 if y0 >= H - y1 else max(H - lh, 0)
        lx = max(min(x0, W - lw_), 0)
        cv2.rectangle(canvas, (lx, ly), (lx + lw_ - 1, ly + lh - 1), tuple(int(v) for v in color), -1)
        cv2.putText(
            canvas,
            text,
            (lx + _LABEL_PAD, ly + _LABEL_PAD + th),
            _FONT,
            font_scale,
            _contrasting_text_color(color),
            thick,
            cv2.LINE_AA,
        )


def _as_rgb255(color) -> tuple[int, int, int]:
    """A colour as an (r, g, b) int tuple in 0..255; accepts 0..1 floats (matplotlib style) too."""
    c = np.asarray(color, dtype=np.float64).reshape(-1)[:3]
    if c.size != 3:
        raise ValueError(f"colour must have 3 channels, got {color!r}")
    if c.max() <= 1.0 and np.issubdtype(np.asarray(color).dtype, np.floating):
        c = c * 255.0
    return tuple(int(round(v)) for v in np.clip(c, 0, 255))


def _contrasting_text_color(bg) -> tuple[int, int, int]:
    """Black on light backgrounds, white on dark ones (ITU-R 601 luma)."""
    r, g, b = bg[:3]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


def _to_numpy_boxes(boxes) -> np.ndarray:
    if hasattr(boxes, "tensor"):
        boxes = boxes.tensor
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.detach().cpu().numpy()
    arr = np.asarray(boxes, dtype=np.float32)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {arr.shape}")
    return arr


def _to_list(x) -> list | None:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().tolist()
    return list(x)


def _create_text_labels(
    classes: list | None, scores: list | None, class_names: Sequence[str] | None
) -> list[str] | None:
    """Labels like "cat 97%" (class name when known, else the class id)."""
    labels = None
    if classes is not None:
        if class_names is not None and len(class_names) > 0:
            labels = [class_names[int(c)] if 0 <= int(c) < len(class_names) else str(int(c)) for c in classes]
        else:
            labels = [str(int(c)) for c in classes]
    if scores is not None:
        if labels is None:
            labels = [f"{s * 100:.0f}%" for s in scores]
        else:
            labels = [f"{lab} {s * 100:.0f}%" for lab, s in zip(labels, scores)]
    return labels


# ---------------------------------------------------------------------------- prediction images
def _read_rgb(path: str) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB exactly as the data loader does (EXIF orientation, 16-bit)."""
    from net_detr2.data.detection_utils import read_image

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path!r}")
    return read_image(path, "RGB")


def _image_from_input(inp: dict, input_format: str) -> np.ndarray:
    """Fallback when a dict has no ``file_name``: its (resized) image tensor, back in the output frame."""
    img = inp["image"]
    img = img.detach().cpu().permute(1, 2, 0).numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if input_format == "BGR":
        img = img[:, :, ::-1]
    elif input_format == "L":
        img = np.repeat(img[:, :, :1], 3, axis=2)
    h, w = inp.get("height", img.shape[0]), inp.get("width", img.shape[1])
    if (h, w) != img.shape[:2]:
        img = cv2.resize(np.ascontiguousarray(img), (int(w), int(h)), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(img)


def save_prediction_images(
    model: torch.nn.Module,
    data_loader: Iterable[list[dict]],
    metadata: Any,
    output_dir: str | os.PathLike,
    max_images: int = 8,
    score_threshold: float = 0.3,
) -> list[str]:
    """Run ``model`` on the first ``max_images`` inputs of ``data_loader`` and save drawn predictions.

    The model is put in eval mode under ``torch.no_grad`` (its training flag is restored after).
    Each picture is re-read from the dict's ``file_name`` as RGB (the model's boxes are in that
    original frame, given by the dict's height/width); predictions scoring below
    ``score_threshold`` are not drawn. Files are ``output_dir/<file stem>.png`` (a ``_<k>``
    suffix is added if two inputs share a stem).

    Returns:
        the written paths, in loader order.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    input_format = getattr(model, "input_format", "BGR")
    written: list[str] = []
    used_stems: dict[str, int] = {}
    if max_images <= 0:
        return written
    with torch.no_grad(), eval_mode(model):
        for inputs in data_loader:
            outputs = model(inputs)
            for inp, out in zip(inputs, outputs):
                if "file_name" in inp:
                    img = _read_rgb(inp["file_name"])
                    stem = Path(inp["file_name"]).stem
                else:
                    img = _image_from_input(inp, input_format)
                    stem = str(inp.get("image_id", len(written)))
                inst = out["instances"].to("cpu")
                if inst.has("scores"):
                    inst = inst[inst.scores >= score_threshold]
                vis = Visualizer(img, metadata).draw_instance_predictions(inst)
                k = used_stems.get(stem, 0)
                used_stems[stem] = k + 1
                path = output_dir / (f"{stem}.png" if k == 0 else f"{stem}_{k}.png")
                vis.save(path)
                written.append(str(path))
                if len(written) >= max_images:
                    return written
    return written


def make_image_grid(images: Sequence[np.ndarray], columns: int = 4, cell_width: int = 480, gap: int = 4) -> np.ndarray:
    """Tile RGB uint8 images into one picture, row-major, each resized to ``cell_width`` wide (aspect kept).

    Every row is as tall as its tallest cell; the background (and the gap between cells) is white.

    Returns:
        an HxWx3 uint8 RGB image, ``W = columns * cell_width + (columns + 1) * gap`` (fewer columns when
        there are fewer images).
    """
    if not images:
        raise ValueError("make_image_grid: no images")
    if columns < 1 or cell_width < 1:
        raise ValueError(f"make_image_grid: columns and cell_width must be >= 1, got {columns}, {cell_width}")
    cells = []
    for img in images:
        h, w = img.shape[:2]
        height = max(int(round(h * cell_width / w)), 1)
        interp = cv2.INTER_AREA if cell_width < w else cv2.INTER_LINEAR
        cells.append(cv2.resize(np.ascontiguousarray(img), (cell_width, height), interpolation=interp))
    columns = min(columns, len(cells))
    rows = [cells[i : i + columns] for i in range(0, len(cells), columns)]
    row_heights = [max(c.shape[0] for c in row) for row in rows]
    grid = np.full(
        (sum(row_heights) + gap * (len(rows) + 1), columns * cell_width + gap * (columns + 1), 3), 255, dtype=np.uint8
    )
    y = gap
    for row, row_height in zip(rows, row_heights):
        for j, cell in enumerate(row):
            x = gap + j * (cell_width + gap)
            grid[y : y + cell.shape[0], x : x + cell_width] = cell
        y += row_height + gap
    return grid


def save_image_grid(
    paths: Sequence[str | os.PathLike], output: str | os.PathLike, columns: int = 4, cell_width: int = 480
) -> str:
    """Read pictures (e.g. the files of `save_prediction_images`) and save them tiled by `make_image_grid`."""
    VisImage(make_image_grid([_read_rgb(str(p)) for p in paths], columns, cell_width)).save(output)
    return str(output)
