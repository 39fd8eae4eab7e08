"""Dynamic Coefficient loss weights (Eq. 1-2 of the DC-RetinaNet summary; our reading in NOTES.md).

A positive anchor whose decoded box is well localised gets a larger weight on its classification
loss, so the classifier learns most from the anchors the localiser already trusts.
"""

from __future__ import annotations

import torch

__all__ = ["OFFSET_UNITS", "dynamic_coefficient", "normalized_coefficient"]

OFFSET_UNITS = ("gt_size", "pixels")


def dynamic_coefficient(
    pred_boxes: torch.Tensor, gt_boxes: torch.Tensor, eps: float = 1e-6, offset_units: str = "gt_size"
) -> torch.Tensor:
    """Eq. 1: ``lambda = 1 / (sigmoid(|c - c^|^2) + tanh(|w/h - w^/h^|) + eps)``.

    Args:
        pred_boxes: [N, 4] decoded predicted boxes (XYXY) of the positive anchors; detached here.
        gt_boxes: [N, 4] their matched ground-truth boxes (XYXY).
        offset_units: the centre offset ``c - c^`` in units of the ground truth's width and height
            (``"gt_size"``: the weight does not depend on the object's size or the image scale) or in
            ``"pixels"`` (then sigmoid(|c - c^|^2) is within 2% of 1 for offsets beyond 2 px).
    Returns:
        [N] coefficients in (0.5, 2], 2 for a perfect box.
    """
    if offset_units not in OFFSET_UNITS:
        raise ValueError(f"dynamic_coefficient: offset_units must be one of {OFFSET_UNITS}, got {offset_units!r}")
    pred_boxes = pred_boxes.detach()
    gt_wh = (gt_boxes[:, 2:] - gt_boxes[:, :2]).clamp(min=eps)
    pred_wh = (pred_boxes[:, 2:] - pred_boxes[:, :2]).clamp(min=eps)
    centre_offset = ((pred_boxes[:, :2] + pred_boxes[:, 2:]) - (gt_boxes[:, :2] + gt_boxes[:, 2:])) / 2
    if offset_units == "gt_size":
        centre_offset = centre_offset / gt_wh
    squared_offset = (centre_offset**2).sum(dim=1)
    aspect_difference = (gt_wh[:, 0] / gt_wh[:, 1] - pred_wh[:, 0] / pred_wh[:, 1]).abs()
    return 1.0 / (torch.sigmoid(squared_offset) + torch.tanh(aspect_difference) + eps)


def normalized_coefficient(coefficient: torch.Tensor, cls_loss: torch.Tensor) -> torch.Tensor:
    """Eq. 2: ``lambda' = lambda * sum(L) / sum(lambda * L)`` over the positives (detached).

    Args:
        coefficient: [N] lambda of the positive anchors.
        cls_loss: [N] their (unweighted) classification losses.
    Returns:
        [N] weights with ``sum(lambda' * L) == sum(L)``: the positives' total classification loss is
        unchanged, only redistributed among them.
    """
    coefficient = coefficient.detach()
    cls_loss = cls_loss.detach()
    weighted = (coefficient * cls_loss).sum()
    total = cls_loss.sum()
    # With no loss to redistribute any weight is exact; 1 keeps the gradient unchanged.
    scale = torch.where(
        weighted > 0, total / weighted.clamp(min=torch.finfo(weighted.dtype).tiny), torch.ones_like(total)
    )
    return torch.where(weighted > 0, coefficient * scale, torch.ones_like(coefficient))
