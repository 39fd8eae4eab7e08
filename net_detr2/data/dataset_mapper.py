"""`DatasetMapper`: a dataset dict -> the model's input dict (image tensor + ground-truth `Instances`)."""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from . import detection_utils as utils
from . import transforms as T

__all__ = ["DatasetMapper", "to_chw_tensor"]

logger = logging.getLogger(__name__)


class DatasetMapper:
    """Read the image, apply ``augmentations`` to it and its boxes, and build the model input.

    Output dict: ``"image"`` (CxHxW uint8 tensor in ``image_format``), ``"height"``/``"width"`` (the
    original image size: the frame the model's predictions are returned in), ``"file_name"``,
    ``"image_id"`` and, in training (or with ``instances_in_eval=True``), ``"instances"``:
    `Instances` with ``gt_boxes`` (Boxes, XYXY_ABS in the augmented image) and ``gt_classes`` (int64).
    Crowd annotations are left out. Boxes are clipped to the augmented image and boxes left with no area
    are dropped; both are counted (``self.box_stats``) and summarised in the log.

    A subclass adds further inputs made from the picture as read through `add_extra_inputs` (EFPN's
    mapper adds the teacher's 2x image that way).
    """

    def __init__(
        self,
        is_train: bool,
        *,
        augmentations: Sequence,
        image_format: str = "BGR",
        use_instance_mask: bool = False,
        use_keypoint: bool = False,
        instances_in_eval: bool = False,
        log_period: int = 2000,
    ):
        if use_instance_mask or use_keypoint:
            raise NotImplementedError("DatasetMapper: masks and keypoints are not supported by net_detr2")
        self.is_train = is_train
        self.augmentations = T.AugmentationList(list(augmentations))
        self.image_format = image_format
        self.instances_in_eval = instances_in_eval
        self.log_period = log_period
        self.box_stats: Counter = Counter()
        mode = "training" if is_train else "inference"
        logger.info("[DatasetMapper] Augmentations used in %s: %s", mode, self.augmentations)

    def _want_instances(self) -> bool:
        return self.is_train or self.instances_in_eval

    def __call__(self, dataset_dict: dict) -> dict:
        dataset_dict = copy.deepcopy(dataset_dict)  # it is modified below
        image = utils.read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)

        annos = dataset_dict.pop("annotations", None)
        want = self._want_instances() and annos is not None
        if want:
            annos = [a for a in annos if a.get("iscrowd", 0) == 0]
            boxes = utils._boxes_xyxy(annos)
        else:
            boxes = None
        # boxes go through the augmentations too: some (SSD's min-IoU crop) depend on them
        aug_input = T.AugInput(image, boxes=boxes if boxes is not None else np.zeros((0, 4), np.float32))
        transforms = self.augmentations(aug_input)
        original, image = image, aug_input.image
        h, w = image.shape[:2]
        dataset_dict["image"] = to_chw_tensor(image)
        self.add_extra_inputs(dataset_dict, original, transforms)

        if want:
            tb = aug_input.boxes.copy()
            clipped = tb.copy()
            np.clip(clipped[:, 0::2], 0, w, out=clipped[:, 0::2])
            np.clip(clipped[:, 1::2], 0, h, out=clipped[:, 1::2])
            for a, b in zip(annos, clipped):
                a["bbox"], a["bbox_mode"] = b.tolist(), 0  # XYXY_ABS
            instances = utils.annotations_to_instances(annos, (h, w))
            instances, keep = utils.filter_empty_instances(instances, return_mask=True)
            kept = keep.numpy()
            self._count(
                len(annos),
                int((np.abs(clipped - tb).max(axis=1) > 1e-4)[kept].sum()) if len(tb) else 0,
                int((~kept).sum()),
            )
            dataset_dict["instances"] = instances
        return dataset_dict

    def add_extra_inputs(self, dataset_dict: dict, original: np.ndarray, transforms: T.TransformList) -> None:
        """Hook for subclasses: add model inputs to ``dataset_dict`` (in place) from ``original``, the picture
        as read (HxWxC in ``image_format``, before any augmentation), and ``transforms``, the transforms
        that made ``dataset_dict["image"]`` from it. Adds nothing here."""

    def _count(self, n: int, clipped: int, dropped: int) -> None:
        s = self.box_stats
        s["images"] += 1
        s["boxes"] += n
        s["clipped"] += clipped
        s["dropped"] += dropped
        if self.log_period and s["images"] % self.log_period == 0:
            logger.info(
                "[DatasetMapper] after %d images: %d boxes, %d clipped to the augmented image, %d dropped "
                "(no area left)",
                s["images"],
                s["boxes"],
                s["clipped"],
                s["dropped"],
            )


def to_chw_tensor(image: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC numpy image -> CxHxW tensor (sharing memory where it can)."""
    if image.ndim == 2:
        image = image[:, :, None]
    return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
