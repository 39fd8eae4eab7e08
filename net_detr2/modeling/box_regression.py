"""Box <-> regression-delta encodings and the dense box regression losses built on them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F

from net_detr2.layers import cat
from net_detr2.structures import Boxes

__all__ = [
    "Box2BoxTransform",
    "Box2BoxTransformLinear",
    "smooth_l1_loss",
    "giou_loss",
    "_dense_box_regression_loss",
]

# dw/dh above log(1000/16) would scale a 16 px box beyond 1000 px: clamp to keep exp() finite
_DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)


def _centers_sizes(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """[R, 4] XYXY -> (ctr_x, ctr_y, width, height), each [R]."""
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * widths, boxes[:, 1] + 0.5 * heights, widths, heights


class Box2BoxTransform:
    """The R-CNN encoding: (dx, dy, dw, dh) = (wx*Δx/w, wy*Δy/h, ww*log(w'/w), wh*log(h'/h)).

    Args:
        weights: (wx, wy, ww, wh) scaling of the deltas, e.g. (1, 1, 1, 1) for RPN, (10, 10, 5, 5) for Fast R-CNN.
        scale_clamp: upper bound of dw, dh when decoding.
    """

    def __init__(self, weights: Sequence[float], scale_clamp: float = _DEFAULT_SCALE_CLAMP):
        if len(weights) != 4:
            raise ValueError(f"Box2BoxTransform: weights must have 4 numbers, got {weights!r}")
        self.weights = tuple(weights)
        self.scale_clamp = scale_clamp

    def get_deltas(self, src_boxes: torch.Tensor, target_boxes: torch.Tensor) -> torch.Tensor:
        """Deltas [R, 4] that turn src_boxes [R, 4] into target_boxes [R, 4] (both XYXY)."""
        if not isinstance(src_boxes, torch.Tensor) or not isinstance(target_boxes, torch.Tensor):
            raise TypeError("Box2BoxTransform.get_deltas expects tensors")
        sx, sy, sw, sh = _centers_sizes(src_boxes)
        tx, ty, tw, th = _centers_sizes(target_boxes)
        wx, wy, ww, wh = self.weights
        return torch.stack(
            (wx * (tx - sx) / sw, wy * (ty - sy) / sh, ww * torch.log(tw / sw), wh * torch.log(th / sh)), dim=1
        )

    def apply_deltas(self, deltas: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Decode deltas [R, 4*k] (k box predictions per row) relative to boxes [R, 4] -> [R, 4*k] XYXY."""
        deltas = deltas.float()  # exp() in half precision overflows
        boxes = boxes.to(deltas.dtype)
        cx, cy, w, h = _centers_sizes(boxes)
        wx, wy, ww, wh = self.weights
        dx = deltas[:, 0::4] / wx
        dy = deltas[:, 1::4] / wy
        dw = torch.clamp(deltas[:, 2::4] / ww, max=self.scale_clamp)
        dh = torch.clamp(deltas[:, 3::4] / wh, max=self.scale_clamp)
        pcx = dx * w[:, None] + cx[:, None]
        pcy = dy * h[:, None] + cy[:, None]
        pw = torch.exp(dw) * w[:, None]
        ph = torch.exp(dh) * h[:, None]
        out = torch.stack((pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph), dim=-1)
        return out.reshape(deltas.shape)


class Box2BoxTransformLinear:
    """The FCOS-style encoding: distances (left, top, right, bottom) from the source box centre.

    Args:
        normalize_by_size: divide the distances by the source box width/height.
    """

    def __init__(self, normalize_by_size: bool = True):
        self.normalize_by_size = normalize_by_size

    def get_deltas(self, src_boxes: torch.Tensor, target_boxes: torch.Tensor) -> torch.Tensor:
        cx, cy, w, h = _centers_sizes(src_boxes)
        d = torch.stack(
            (cx - target_boxes[:, 0], cy - target_boxes[:, 1], target_boxes[:, 2] - cx, target_boxes[:, 3] - cy), dim=1
        )
        if self.normalize_by_size:
            d = d / torch.stack((w, h, w, h), dim=1)
        return d

    def apply_deltas(self, deltas: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        deltas = F.relu(deltas.float())  # distances are non-negative
        boxes = boxes.to(deltas.dtype)
        cx, cy, w, h = _centers_sizes(boxes)
        if self.normalize_by_size:
            scale = torch.stack((w, h, w, h), dim=1)[:, None, :]
            deltas = deltas.view(deltas.shape[0], -1, 4) * scale
        else:
            deltas = deltas.view(deltas.shape[0], -1, 4)
        cx, cy = cx[:, None], cy[:, None]
        out = torch.stack((cx - deltas[..., 0], cy - deltas[..., 1], cx + deltas[..., 2], cy + deltas[..., 3]), dim=-1)
        return out.reshape(deltas.shape[0], -1)


def smooth_l1_loss(input: torch.Tensor, target: torch.Tensor, beta: float, reduction: str = "none") -> torch.Tensor:
    """Huber-like loss: 0.5 x^2 / beta for |x| < beta, |x| - 0.5 beta above; plain L1 when beta ~ 0."""
    diff = torch.abs(input - target)
    if beta < 1e-5:
        loss = diff  # avoids the 0/0 of the quadratic branch
    else:
        loss = torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)
    return _reduce(loss, reduction)


def giou_loss(boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7) -> torch.Tensor:
    """1 - generalised IoU of matched XYXY box pairs [..., 4]."""
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    ix1, iy1 = torch.max(x1, x1g), torch.max(y1, y1g)
    ix2, iy2 = torch.min(x2, x2g), torch.min(y2, y2g)
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    iou = inter / (union + eps)
    hull = (torch.max(x2, x2g) - torch.min(x1, x1g)) * (torch.max(y2, y2g) - torch.min(y1, y1g))
    giou = iou - (hull - union) / (hull + eps)
    return _reduce(1 - giou, reduction)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"unknown reduction {reduction!r} (expected 'none', 'mean' or 'sum')")


def _dense_box_regression_loss(
    anchors: list[Boxes | torch.Tensor],
    box2box_transform: Box2BoxTransform,
    pred_anchor_deltas: list[torch.Tensor],
    gt_boxes: list[torch.Tensor],
    fg_mask: torch.Tensor,
    box_reg_loss_type: str = "smooth_l1",
    smooth_l1_beta: float = 0.0,
) -> torch.Tensor:
    """Summed box regression loss over the foreground anchors of a batch (not normalised).

    Args:
        anchors: per level Boxes (or tensors) [Ri, 4]; concatenated they give R anchors.
        pred_anchor_deltas: per level [N, Ri, 4] predictions.
        gt_boxes: per image [R, 4] matched ground-truth boxes.
        fg_mask: bool [N, R] of the anchors that contribute (or ``...`` for all).
        box_reg_loss_type: "smooth_l1" (on deltas) or "giou" (on decoded boxes).
    """
    anchors_t = cat([a.tensor if isinstance(a, Boxes) else a for a in anchors])
    if box_reg_loss_type == "smooth_l1":
        gt_deltas = torch.stack([box2box_transform.get_deltas(anchors_t, g) for g in gt_boxes])  # [N, R, 4]
        return smooth_l1_loss(cat(pred_anchor_deltas, dim=1)[fg_mask], gt_deltas[fg_mask], smooth_l1_beta, "sum")
    if box_reg_loss_type == "giou":
        pred_boxes = torch.stack([box2box_transform.apply_deltas(d, anchors_t) for d in cat(pred_anchor_deltas, dim=1)])
        return giou_loss(pred_boxes[fg_mask], torch.stack(gt_boxes)[fg_mask], reduction="sum")
    raise ValueError(f"box_reg_loss_type {box_reg_loss_type!r} is not supported (expected 'smooth_l1' or 'giou')")
