"""Helpers used by data mappers: reading images, transforming annotations, building `Instances`."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from net_detr2.structures import Boxes, BoxMode, Instances

from . import transforms as T

__all__ = [
    "UnreadableImageError",
    "open_image",
    "read_image",
    "convert_PIL_to_numpy",
    "check_image_size",
    "transform_instance_annotations",
    "transform_boxes",
    "annotations_to_instances",
    "filter_empty_instances",
    "SizeMismatchError",
]

logger = logging.getLogger(__name__)


class UnreadableImageError(OSError):
    """An image file is missing or cannot be decoded. The message names the file."""


class SizeMismatchError(ValueError):
    """The image read from disk does not have the height/width its annotations say."""


def _to_8bit(image: Image.Image) -> Image.Image:
    """A 16-bit integer image (PIL modes ``I;16*``, and ``I``) as 8-bit "L": ``round(v * 255 / 65535)``.

    The full 16-bit range maps onto 0..255 (65535 -> 255, 257 -> 1), the same for every image, as image
    viewers show them (PIL's own ``convert`` clips at 255 instead, turning almost every pixel white).
    Values of mode ``I`` outside 0..65535 are clipped. 16-bit RGB(A) PNGs already open as 8-bit in PIL.
    """
    arr = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
    return Image.fromarray(((arr * 255 + 32767) // 65535).astype(np.uint8), mode="L")


def convert_PIL_to_numpy(image: Image.Image, format: str | None) -> np.ndarray:
    """PIL image -> numpy HxWxC uint8 in ``format``: "BGR", "RGB", "L" (HxWx1), "YUV-BT.601" or None (as is).

    16-bit grayscale images are scaled to 8 bits (see `_to_8bit`) for the 8-bit formats; 32-bit float images
    (mode ``F``) have no agreed 8-bit range and are refused for them.
    """
    if format is not None:
        conv = "RGB" if format in ("BGR", "YUV-BT.601") else format
        if conv not in ("RGB", "L", "RGBA", "I", "F"):
            raise ValueError(f"read_image: unsupported format {format!r}")
        if conv in ("RGB", "L", "RGBA"):
            if image.mode == "I" or image.mode.startswith("I;16"):
                image = _to_8bit(image)
            elif image.mode == "F":
                raise ValueError("32-bit float pixels (PIL mode F) have no 8-bit range; convert the image first")
        image = image.convert(conv)
    arr = np.asarray(image)
    if format == "L":
        arr = arr[:, :, None]
    elif format == "BGR":
        arr = arr[:, :, ::-1]
    elif format == "YUV-BT.601":
        arr = arr.astype(np.float32) / 255.0
        arr = (
            arr
            @ np.array(
                [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]], dtype=np.float32
            ).T
        )
    return np.ascontiguousarray(arr)


def open_image(file_name: str) -> Image.Image:
    """``PIL.Image.open(file_name)`` (header read, pixels not yet decoded), with errors that name the file.

    Images with more pixels than PIL's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, 89.5 M by
    default) are refused before decoding: a small crafted file can claim a size that needs gigabytes. Raise
    that limit (or set it to None) for genuine huge images. Use the result in a ``with`` block.

    Raises:
        UnreadableImageError: missing, not an image, or over the pixel limit.
    """
    try:
        with warnings.catch_warnings():  # PIL only warns between 1x and 2x the limit; we refuse both
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file_name)
    except FileNotFoundError as e:
        raise UnreadableImageError(f"Image file not found: {file_name}") from e
    except Image.DecompressionBombError as e:
        raise UnreadableImageError(f"Image {file_name} is over PIL's decompression-bomb limit: {e}") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise UnreadableImageError(f"Cannot read image {file_name}: {type(e).__name__}: {e}") from e
    limit = Image.MAX_IMAGE_PIXELS
    w, h = image.size
    if limit is not None and w * h > limit:
        image.close()
        raise UnreadableImageError(
            f"Image {file_name} is {w}x{h} = {w * h:,} pixels, over PIL's decompression-bomb limit of {limit:,} "
            "(PIL.Image.MAX_IMAGE_PIXELS): refused before decoding. If the image is genuine, raise that limit"
        )
    return image


def read_image(file_name: str, format: str | None = "BGR") -> np.ndarray:
    """Read an image file into an HxWxC numpy array (uint8 for BGR/RGB/L).

    The EXIF orientation is applied (so the pixels are in the frame the annotations were drawn in).
    16-bit grayscale images are scaled to 8 bits (65535 -> 255, see `convert_PIL_to_numpy`).

    Raises:
        UnreadableImageError: the file is missing, is not a decodable image, or is over PIL's
            decompression-bomb pixel limit (`open_image`); the message names it.
    """
    with open_image(file_name) as image:
        try:
            image.load()  # decode now, while the file is open, so truncated files fail here
            image = ImageOps.exif_transpose(image)
            return convert_PIL_to_numpy(image, format)
        except (OSError, SyntaxError, ValueError) as e:
            raise UnreadableImageError(f"Cannot read image {file_name}: {type(e).__name__}: {e}") from e


def check_image_size(dataset_dict: dict, image: np.ndarray) -> None:
    """Raise if the image size differs from the dict's "height"/"width"; fill them in when absent."""
    h, w = image.shape[:2]
    if "width" in dataset_dict or "height" in dataset_dict:
        expected = (dataset_dict.get("height", h), dataset_dict.get("width", w))
        if (h, w) != tuple(expected):
            raise SizeMismatchError(
                f"Image {dataset_dict.get('file_name', '<unknown>')}: read size (h, w) = {(h, w)} but the "
                f"annotations say {tuple(expected)}. Is the EXIF orientation or the annotation file wrong?"
            )
    dataset_dict.setdefault("height", h)
    dataset_dict.setdefault("width", w)


def _boxes_xyxy(annos: Sequence[dict]) -> np.ndarray:
    """Nx4 XYXY_ABS float32 boxes of a list of annotations (each with bbox + bbox_mode)."""
    if not annos:
        return np.zeros((0, 4), dtype=np.float32)
    by_mode: dict[int, list[int]] = {}
    for i, a in enumerate(annos):
        by_mode.setdefault(int(a["bbox_mode"]), []).append(i)
    out = np.zeros((len(annos), 4), dtype=np.float32)
    for mode, idx in by_mode.items():
        raw = np.asarray([annos[i]["bbox"] for i in idx], dtype=np.float32).reshape(-1, 4)
        if mode in (BoxMode.XYXY_REL, BoxMode.XYWH_REL):
            raise ValueError("Relative box modes are not supported in dataset dicts; convert to absolute first")
        out[idx] = BoxMode.convert(raw, mode, BoxMode.XYXY_ABS)
    return out


def transform_boxes(boxes: np.ndarray, transforms, image_size: tuple[int, int]) -> np.ndarray:
    """Apply ``transforms`` to Nx4 XYXY boxes and clip them to ``image_size`` = (h, w). Vectorised."""
    boxes = transforms.apply_box(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
    h, w = image_size
    boxes = boxes.copy()
    np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
    return boxes


def transform_instance_annotations(
    annotation: dict, transforms, image_size: tuple[int, int], *, keypoint_hflip_indices=None
) -> dict:
    """Transform one annotation's box (to XYXY_ABS) and clip it to ``image_size``. Returns the annotation."""
    if isinstance(transforms, (tuple, list)):
        transforms = T.TransformList(transforms)
    box = _boxes_xyxy([annotation])
    annotation["bbox"] = transform_boxes(box, transforms, image_size)[0].tolist()
    annotation["bbox_mode"] = BoxMode.XYXY_ABS
    return annotation


def annotations_to_instances(
    annos: Sequence[dict], image_size: tuple[int, int], mask_format: str = "polygon"
) -> Instances:
    """Build `Instances` with ``gt_boxes`` (Boxes, XYXY_ABS) and ``gt_classes`` (int64) from annotations."""
    boxes = _boxes_xyxy(annos)
    target = Instances(image_size)
    target.gt_boxes = Boxes(torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    target.gt_classes = torch.tensor([int(a["category_id"]) for a in annos], dtype=torch.int64)
    return target


def filter_empty_instances(
    instances: Instances, by_box: bool = True, box_threshold: float = 1e-5, return_mask: bool = False
):
    """Drop instances whose box has width or height <= ``box_threshold``."""
    m = torch.ones(len(instances), dtype=torch.bool)
    if by_box and instances.has("gt_boxes"):
        m &= instances.gt_boxes.nonempty(threshold=box_threshold)
    if return_mask:
        return instances[m], m
    return instances[m]
