"""Test-time augmentation (TTA): a detector run on several rescaled and mirrored copies of each image, whose
detections are mapped back to the image and merged by per-class NMS.

``DetectorWithTTA`` wraps any detector of the model contract (Faster R-CNN, RetinaNet, SSD, ...): eval inputs
``list[dict]`` with "image" and optional "height"/"width", outputs ``[{"instances": Instances}]`` in each
input's height/width frame. Because the detector returns boxes in that frame whatever size its input has,
a rescaled view needs no mapping back; a mirrored view's boxes are mirrored back: ``x -> width - x``. An input
holding another picture beside "image" (EFPN's "image_2x") is refused, naming it: the views would not match it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from net_detr2.data.transforms import ResizeTransform
from net_detr2.layers import batched_nms
from net_detr2.structures import Boxes, Instances

__all__ = ["DetectorWithTTA", "build_tta_model", "flip_boxes", "model_nms_settings"]


def flip_boxes(boxes: torch.Tensor, width: float) -> torch.Tensor:
    """XYXY boxes [R, 4] of a horizontally mirrored image of ``width`` -> the same boxes in the image."""
    x0, y0, x1, y1 = boxes.unbind(dim=1)
    return torch.stack([width - x1, y0, width - x0, y1], dim=1)


def model_nms_settings(model: nn.Module) -> tuple[float, int]:
    """The detector's own test-time NMS IoU threshold and number of detections per image: ``test_nms_thresh``
    and ``max_detections_per_image`` of a dense detector (RetinaNet, SSD), ``test_nms_thresh`` and
    ``test_topk_per_image`` of an R-CNN's box predictor."""
    for owner, cap in ((model, "max_detections_per_image"), (_box_predictor(model), "test_topk_per_image")):
        if owner is not None and hasattr(owner, "test_nms_thresh") and hasattr(owner, cap):
            return float(owner.test_nms_thresh), int(getattr(owner, cap))
    raise ValueError(
        f"DetectorWithTTA: cannot find the test NMS settings of {type(model).__name__} (neither test_nms_thresh and "
        "max_detections_per_image nor roi_heads.box_predictor.test_nms_thresh and test_topk_per_image): give "
        "nms_thresh and max_detections (train.tta.nms_thresh, train.tta.max_detections)"
    )


def _box_predictor(model: nn.Module) -> nn.Module | None:
    return getattr(getattr(model, "roi_heads", None), "box_predictor", None)


class DetectorWithTTA(nn.Module):
    """A detector evaluated on ``len(scales) * (2 if flip else 1)`` views of each image.

    Each view is the input image resized by a factor of ``scales`` (1.0: the image as the test mapper made
    it, untouched) and, with ``flip``, also mirrored left-right. The detector runs once per scale on the
    plain and mirrored views together; mirrored views' boxes are mirrored back; then the detections of all
    views go through per-class NMS (IoU ``nms_thresh``) and the ``max_detections`` best are kept. A single view
    (``scales=[1.0]``, no flip) returns the detector's own detections unchanged.

    Args:
        model: the detector, in eval mode when called.
        scales: resize factors of the test image (both sides); a detector whose layers need a minimum input
            (SSD's last levels) takes factors >= 1.
        flip: add the mirrored view of every scale.
        nms_thresh, max_detections: of the merge; None: the detector's own (`model_nms_settings`).
    """

    def __init__(
        self,
        model: nn.Module,
        scales: Sequence[float] = (1.0,),
        flip: bool = True,
        nms_thresh: float | None = None,
        max_detections: int | None = None,
    ):
        super().__init__()
        scales = [float(s) for s in scales]
        if not scales or any(not s > 0 for s in scales):
            raise ValueError(f"DetectorWithTTA: scales must be positive numbers, got {scales}")
        if len(set(scales)) != len(scales):
            raise ValueError(f"DetectorWithTTA: scales repeat a value: {scales}")
        self.model = model
        self.scales = scales
        self.flip = bool(flip)
        if nms_thresh is None or max_detections is None:
            own_thresh, own_max = model_nms_settings(model)
            nms_thresh = own_thresh if nms_thresh is None else nms_thresh
            max_detections = own_max if max_detections is None else max_detections
        self.nms_thresh = float(nms_thresh)
        self.max_detections = int(max_detections)
        self.train(model.training)  # as the model is (an inference context restores the wrapper's mode on both)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def input_format(self) -> str:
        return self.model.input_format

    def forward(self, batched_inputs: list[dict]) -> list[dict]:
        if self.model.training:
            raise RuntimeError("DetectorWithTTA is for inference: call .eval() first")
        for inp in batched_inputs:
            self._check_input_keys(inp)
        return [{"instances": self.inference_single_image(x)} for x in batched_inputs]

    def _check_input_keys(self, inp: dict) -> None:
        """A view holds "image" (resized, mirrored), "height" and "width": refuse an input with another array (a
        second picture such as EFPN's "image_2x"), which the views would lack or hold untransformed."""
        for key, value in inp.items():
            if key != "image" and isinstance(value, (torch.Tensor, np.ndarray)):
                raise ValueError(
                    f"DetectorWithTTA: the input has '{key}' ({type(value).__name__} of shape {tuple(value.shape)}) "
                    f"beside 'image'; test-time augmentation transforms only 'image', so {type(self.model).__name__} "
                    f"cannot be given views with a matching '{key}'. Evaluate this model without it "
                    "(train.tta.enabled=False)"
                )

    def inference_single_image(self, inp: dict) -> Instances:
        """The merged detections of one input dict, in its ``height``/``width`` frame."""
        image = inp["image"]
        height, width = inp.get("height", image.shape[-2]), inp.get("width", image.shape[-1])
        per_view = []
        for scale in self.scales:
            scaled = _resize(image, scale)
            views = [{"image": scaled, "height": height, "width": width}]
            if self.flip:
                views.append({"image": scaled.flip(-1), "height": height, "width": width})
            outputs = self.model(views)
            per_view.append(outputs[0]["instances"])
            if self.flip:
                mirrored = outputs[1]["instances"]
                mirrored.pred_boxes = Boxes(flip_boxes(mirrored.pred_boxes.tensor, width))
                per_view.append(mirrored)
        if len(per_view) == 1:
            return per_view[0]
        return self.merge(per_view, (height, width))

    def merge(self, per_view: list[Instances], image_size: tuple[int, int]) -> Instances:
        """The views' detections (one frame) -> per-class NMS, best ``max_detections`` first."""
        boxes = torch.cat([r.pred_boxes.tensor for r in per_view])
        scores = torch.cat([r.scores for r in per_view])
        classes = torch.cat([r.pred_classes for r in per_view])
        keep = batched_nms(boxes, scores, classes, self.nms_thresh)[: self.max_detections]
        return Instances(image_size, pred_boxes=Boxes(boxes[keep]), scores=scores[keep], pred_classes=classes[keep])


def build_tta_model(model: nn.Module, tta: Mapping[str, Any]) -> DetectorWithTTA:
    """``model`` in a `DetectorWithTTA` set up by a config's ``train.tta`` node (``enabled`` is the caller's
    business)."""
    return DetectorWithTTA(
        model,
        scales=list(tta["scales"]),
        flip=tta["flip"],
        nms_thresh=tta["nms_thresh"],
        max_detections=tta["max_detections"],
    )


def _resize(image: torch.Tensor, scale: float) -> torch.Tensor:
    """A [C, H, W] image resized by ``scale`` (rounded sizes) with the data pipeline's resize (bilinear);
    the image itself at 1.0."""
    h, w = image.shape[-2:]
    new_h, new_w = int(h * scale + 0.5), int(w * scale + 0.5)
    if (new_h, new_w) == (h, w):
        return image
    hwc = np.ascontiguousarray(image.permute(1, 2, 0).cpu().numpy())
    resized = ResizeTransform(h, w, new_h, new_w).apply_image(hwc)
    return torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)), device=image.device)
