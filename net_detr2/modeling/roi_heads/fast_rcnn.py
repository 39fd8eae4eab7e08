"""Fast R-CNN box predictor: per-RoI class scores + class-specific box deltas, losses and inference."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from net_detr2.layers import ShapeSpec, batched_nms_top, cat, nonzero_tuple
from net_detr2.modeling.box_regression import Box2BoxTransform, _dense_box_regression_loss, giou_loss, smooth_l1_loss
from net_detr2.structures import Boxes, Instances
from net_detr2.utils.amp import to_float32

from .box_head import as_shape_spec

__all__ = ["fast_rcnn_inference", "fast_rcnn_inference_single_image", "FastRCNNOutputLayers", "select_class_boxes"]


def select_class_boxes(pred_deltas: torch.Tensor, classes: torch.Tensor, box_dim: int = 4) -> torch.Tensor:
    """Each RoI's box (deltas or decoded box) for one class.

    Args:
        pred_deltas: [R, K*box_dim] class-specific boxes, or [R, box_dim] class-agnostic ones (returned as
            they are).
        classes: int64 [R] in [0, K): the class whose deltas each row takes.
    Returns:
        [R, box_dim].
    """
    if pred_deltas.shape[1] == box_dim:
        return pred_deltas
    rows = torch.arange(len(classes), device=classes.device)
    return pred_deltas.view(len(pred_deltas), -1, box_dim)[rows, classes]


def fast_rcnn_inference(
    boxes: list[torch.Tensor],
    scores: list[torch.Tensor],
    image_shapes: list[tuple[int, int]],
    score_thresh: float,
    nms_thresh: float,
    topk_per_image: int,
    nms: Callable | None = None,
) -> tuple[list[Instances], list[torch.Tensor]]:
    """Per image: threshold scores, per-class NMS, keep the top ``topk_per_image``.

    Args:
        boxes: per image [Ri, K*4] (or [Ri, 4] class-agnostic) decoded boxes.
        scores: per image [Ri, K+1] probabilities (last column = background).
        image_shapes: (h, w) per image, to clip boxes.
        nms: optional replacement of the per-class NMS (e.g. CL-balanced NMS): a callable
            ``(boxes [M, 4], scores [M], classes [M], iou_threshold) -> (keep [k] by decreasing score,
            reported scores [k])``; None = `batched_nms`, reporting each kept box's own score.
    Returns:
        (Instances with pred_boxes / scores / pred_classes, kept proposal indices) per image.
    """
    out = [
        fast_rcnn_inference_single_image(b, s, shape, score_thresh, nms_thresh, topk_per_image, nms)
        for b, s, shape in zip(boxes, scores, image_shapes)
    ]
    return [o[0] for o in out], [o[1] for o in out]


def fast_rcnn_inference_single_image(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    image_shape: tuple[int, int],
    score_thresh: float,
    nms_thresh: float,
    topk_per_image: int,
    nms: Callable | None = None,
) -> tuple[Instances, torch.Tensor]:
    """One image of `fast_rcnn_inference`."""
    valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
    if torch.jit.is_tracing() or not valid.all():  # tracing (export): filter whatever the traced example held
        boxes, scores = boxes[valid], scores[valid]
    scores = scores[:, :-1]  # drop background
    num_reg = boxes.shape[1] // 4
    b = Boxes(boxes.reshape(-1, 4))
    b.clip(image_shape)
    boxes = b.tensor.view(-1, num_reg, 4)
    keep_mask = scores > score_thresh  # [R, K]
    inds = keep_mask.nonzero()  # rows (proposal, class)
    boxes = boxes[inds[:, 0], 0] if num_reg == 1 else boxes[keep_mask]
    scores = scores[keep_mask]
    if nms is None:
        keep = batched_nms_top(boxes, scores, inds[:, 1], nms_thresh, topk_per_image)
        kept_scores = scores[keep]
    else:
        keep, kept_scores = nms(boxes, scores, inds[:, 1], nms_thresh)
        if topk_per_image >= 0:
            keep, kept_scores = keep[:topk_per_image], kept_scores[:topk_per_image]
    boxes, scores, inds = boxes[keep], kept_scores, inds[keep]
    result = Instances(image_shape)
    result.pred_boxes = Boxes(boxes)
    result.scores = scores
    result.pred_classes = inds[:, 1]
    return result, inds[:, 0]


class FastRCNNOutputLayers(nn.Module):
    """Two linear layers on the box-head feature: ``cls_score`` (K+1 logits) and ``bbox_pred`` (K*4 deltas).

    Args:
        input_shape: box head output shape (or its channel count).
        box2box_transform: proposal <-> delta encoding (weights (10, 10, 5, 5) by default in configs).
        num_classes: K foreground classes; logit K is background.
        test_score_thresh, test_nms_thresh, test_topk_per_image: inference filtering.
        cls_agnostic_bbox_reg: one box regression for all classes.
        smooth_l1_beta, box_reg_loss_type: box loss ("smooth_l1" or "giou").
        loss_weight: float for both losses or dict {"loss_cls": w, "loss_box_reg": w}.
        test_nms: optional NMS replacement at inference (see `fast_rcnn_inference`); None = `batched_nms`.
    """

    def __init__(
        self,
        input_shape: ShapeSpec | int,
        *,
        box2box_transform: Box2BoxTransform,
        num_classes: int,
        test_score_thresh: float = 0.0,
        test_nms_thresh: float = 0.5,
        test_topk_per_image: int = 100,
        cls_agnostic_bbox_reg: bool = False,
        smooth_l1_beta: float = 0.0,
        box_reg_loss_type: str = "smooth_l1",
        loss_weight: float | dict = 1.0,
        test_nms: Callable | None = None,
    ):
        super().__init__()
        input_shape = as_shape_spec(input_shape, "FastRCNNOutputLayers input_shape")
        self.num_classes = num_classes
        input_size = input_shape.channels * (input_shape.width or 1) * (input_shape.height or 1)
        self.cls_score = nn.Linear(input_size, num_classes + 1)
        num_reg = 1 if cls_agnostic_bbox_reg else num_classes
        box_dim = len(box2box_transform.weights)
        self.bbox_pred = nn.Linear(input_size, num_reg * box_dim)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        for layer in (self.cls_score, self.bbox_pred):
            nn.init.constant_(layer.bias, 0)
        self.box2box_transform = box2box_transform
        self.smooth_l1_beta = smooth_l1_beta
        self.test_score_thresh = test_score_thresh
        self.test_nms_thresh = test_nms_thresh
        self.test_topk_per_image = test_topk_per_image
        self.test_nms = test_nms
        if box_reg_loss_type not in ("smooth_l1", "giou"):
            raise ValueError(f"FastRCNNOutputLayers: box_reg_loss_type {box_reg_loss_type!r} (smooth_l1, giou)")
        self.box_reg_loss_type = box_reg_loss_type
        if isinstance(loss_weight, (int, float)):
            loss_weight = {"loss_cls": loss_weight, "loss_box_reg": loss_weight}
        self.loss_weight = dict(loss_weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [R, D] (or [R, C, h, w], flattened) -> (scores [R, K+1], deltas [R, K*4])."""
        if x.dim() > 2:
            x = torch.flatten(x, start_dim=1)
        # fp32 under autocast: softmax, box decoding, NMS and the losses read these
        return to_float32((self.cls_score(x), self.bbox_pred(x)))

    def losses(self, predictions: tuple[torch.Tensor, torch.Tensor], proposals: list[Instances]) -> dict:
        """Cross-entropy over sampled RoIs + box loss over the foreground ones, both / number of sampled RoIs.

        Args:
            proposals: sampled proposals with ``proposal_boxes``, ``gt_classes`` and (when the image has
                GT) ``gt_boxes``.
        """
        scores, deltas = predictions
        gt_classes = cat([p.gt_classes for p in proposals]) if len(proposals) else torch.empty(0, dtype=torch.int64)
        if len(proposals):
            proposal_boxes = cat([p.proposal_boxes.tensor for p in proposals])
            gt_boxes = cat([(p.gt_boxes if p.has("gt_boxes") else p.proposal_boxes).tensor for p in proposals])
        else:
            proposal_boxes = gt_boxes = torch.empty((0, 4), device=deltas.device)
        if gt_classes.numel() == 0:
            loss_cls = 0.0 * scores.sum()
        else:
            loss_cls = F.cross_entropy(scores, gt_classes, reduction="mean")
        losses = {
            "loss_cls": loss_cls,
            "loss_box_reg": self.box_reg_loss(proposal_boxes, gt_boxes, deltas, gt_classes),
        }
        return {k: v * self.loss_weight.get(k, 1.0) for k, v in losses.items()}

    def box_reg_loss(
        self, proposal_boxes: torch.Tensor, gt_boxes: torch.Tensor, pred_deltas: torch.Tensor, gt_classes: torch.Tensor
    ) -> torch.Tensor:
        """Box loss of the foreground RoIs (their GT-class deltas), summed then / total sampled RoIs."""
        box_dim = proposal_boxes.shape[1]
        fg = nonzero_tuple((gt_classes >= 0) & (gt_classes < self.num_classes))[0]
        fg_deltas = select_class_boxes(pred_deltas[fg], gt_classes[fg], box_dim)
        loss = _dense_box_regression_loss(
            [proposal_boxes[fg]],
            self.box2box_transform,
            [fg_deltas.unsqueeze(0)],
            [gt_boxes[fg]],
            ...,
            self.box_reg_loss_type,
            self.smooth_l1_beta,
        )
        # normalise by all sampled RoIs (not only foreground), so each RoI weighs the same
        return loss / max(gt_classes.numel(), 1.0)

    def per_roi_losses(self, predictions, proposals: list[Instances]) -> tuple[torch.Tensor, torch.Tensor]:
        """Unreduced losses of every RoI, e.g. to rank them for online hard example mining.

        Args:
            proposals: labelled proposals (``gt_classes`` in [0, K], no ignored ones; ``gt_boxes`` where the
                image has ground truth).
        Returns:
            (cross-entropy [R], box loss [R]: the ``box_reg_loss_type`` loss of the RoI's class deltas summed
            over coordinates, 0 for background RoIs).
        """
        scores, deltas = predictions
        gt_classes = cat([p.gt_classes for p in proposals])
        cls_loss = F.cross_entropy(scores, gt_classes, reduction="none")
        proposal_boxes = cat([p.proposal_boxes.tensor for p in proposals])
        gt_boxes = cat([(p.gt_boxes if p.has("gt_boxes") else p.proposal_boxes).tensor for p in proposals])
        class_deltas = select_class_boxes(deltas, gt_classes.clamp(max=self.num_classes - 1), gt_boxes.shape[1])
        if self.box_reg_loss_type == "smooth_l1":
            target = self.box2box_transform.get_deltas(proposal_boxes, gt_boxes)
            box_loss = smooth_l1_loss(class_deltas, target, self.smooth_l1_beta).sum(dim=1)
        else:
            box_loss = giou_loss(self.box2box_transform.apply_deltas(class_deltas, proposal_boxes), gt_boxes)
        # background rows may hold non-finite targets (degenerate matched boxes): where(), not a product
        is_fg = gt_classes < self.num_classes
        return cls_loss, torch.where(is_fg, box_loss, torch.zeros_like(cls_loss))

    def inference(self, predictions, proposals: list[Instances]) -> tuple[list[Instances], list[torch.Tensor]]:
        """Detections per image (see `fast_rcnn_inference`) and the kept proposal indices."""
        boxes = self.predict_boxes(predictions, proposals)
        scores = self.predict_probs(predictions, proposals)
        shapes = [p.image_size for p in proposals]
        return fast_rcnn_inference(
            boxes,
            scores,
            shapes,
            self.test_score_thresh,
            self.test_nms_thresh,
            self.test_topk_per_image,
            self.test_nms,
        )

    def predict_boxes(self, predictions, proposals: list[Instances]) -> list[torch.Tensor]:
        """Per image [Ri, K*4] decoded boxes."""
        if not len(proposals):
            return []
        _, deltas = predictions
        n = [len(p) for p in proposals]
        boxes = cat([p.proposal_boxes.tensor for p in proposals])
        return self.box2box_transform.apply_deltas(deltas, boxes).split(n)

    def predict_boxes_for_gt_classes(self, predictions, proposals: list[Instances]) -> list[torch.Tensor]:
        """Per image [Ri, 4]: the box decoded for each proposal's ``gt_classes``."""
        if not len(proposals):
            return []
        scores, deltas = predictions
        boxes = cat([p.proposal_boxes.tensor for p in proposals])
        k, b = scores.shape[1] - 1, boxes.shape[1]
        pred = self.box2box_transform.apply_deltas(deltas, boxes)
        if pred.shape[1] > b:
            pred = select_class_boxes(pred, cat([p.gt_classes for p in proposals]).clamp(0, k - 1), b)
        return pred.split([len(p) for p in proposals])

    def predict_probs(self, predictions, proposals: list[Instances]) -> list[torch.Tensor]:
        """Per image [Ri, K+1] softmax probabilities."""
        scores, _ = predictions
        return F.softmax(scores, dim=-1).split([len(p) for p in proposals])
