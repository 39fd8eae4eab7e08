"""IoU-classification-aware anchor assignment (Eq. 4-5).

An anchor that overlaps a ground truth too little for the IoU rule but already classifies it well,
or lies mostly inside it (irregular shapes), is promoted to positive. `IoUClassificationAwareMatcher`
is the rule as an anchor matcher: pass it as ``RetinaNet(anchor_matcher=...)``.
"""

from __future__ import annotations

import torch

from net_detr2.layers import cat
from net_detr2.modeling.matcher import Matcher
from net_detr2.structures import Boxes, Instances, pairwise_intersection

__all__ = ["IoUClassificationAwareMatcher", "iou_classification_aware_score", "promote_by_score"]


def iou_classification_aware_score(
    gt_boxes: Boxes, anchors: Boxes, gt_class_prob: torch.Tensor, alpha: float
) -> torch.Tensor:
    """Eq. 4: ``s = alpha * p^ + (1 - alpha) * area(anchor ∩ gt) / min(area(anchor), area(gt))``.

    Args:
        gt_boxes: G ground-truth boxes; anchors: A anchors.
        gt_class_prob: [G, A] detached predicted probability of each ground truth's class at each anchor.
    Returns:
        [G, A] scores in [0, 1].
    """
    inter = pairwise_intersection(gt_boxes, anchors)
    min_area = torch.minimum(gt_boxes.area()[:, None], anchors.area()[None, :]).clamp(min=1e-6)
    return alpha * gt_class_prob + (1.0 - alpha) * inter / min_area


def promote_by_score(
    matched_idxs: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor, score_threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5 on top of the IoU matcher's result.

    Args:
        matched_idxs: [A] ground-truth index per anchor from the IoU matcher.
        labels: [A] its labels: 1 positive (IoU >= fg threshold), 0 negative (IoU < bg threshold), -1 ignored.
        scores: [G, A] IoU-classification-aware scores.
    Returns:
        (matched_idxs, labels) where every anchor that is not yet positive and has ``s >= score_threshold``
        for some ground truth becomes positive, matched to the ground truth of its highest score.
        With ``score_threshold > 1`` nothing changes: the plain IoU assignment.
    """
    if scores.numel() == 0:
        return matched_idxs, labels
    best_score, best_gt = scores.max(dim=0)
    promote = (best_score >= score_threshold) & (labels != 1)
    return torch.where(promote, best_gt, matched_idxs), torch.where(promote, torch.ones_like(labels), labels)


class IoUClassificationAwareMatcher:
    """Anchor matcher of Eq. 4-5: the IoU matcher's assignment, then every anchor that is not positive yet
    and scores ``s >= score_threshold`` (Eq. 4) for some ground truth becomes positive for the best one.

    An anchor matcher for `RetinaNet` (``anchor_matcher=``): it implements `Matcher.match_anchors`.

    Args:
        iou_matcher: the IoU rule it extends (RetinaNet's `Matcher`).
        alpha: weight of the predicted probability of the ground truth's class in Eq. 4.
        score_threshold: Eq. 5's threshold (above 1: never fires, the plain IoU assignment).
    """

    def __init__(self, iou_matcher: Matcher, alpha: float = 0.5, score_threshold: float = 0.6):
        self.iou_matcher = iou_matcher
        self.alpha = alpha
        self.score_threshold = score_threshold

    def match_anchors(
        self, anchors: Boxes, gt_instances: Instances, pred_logits: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One image (see `Matcher.match_anchors`). Without predictions (``pred_logits=None``) there is no
        classification to be aware of: the IoU assignment."""
        matched_idxs, labels = self.iou_matcher.match_anchors(anchors, gt_instances)
        if pred_logits is None or len(gt_instances) == 0:
            return matched_idxs, labels
        gt_class_prob = cat(pred_logits)[:, gt_instances.gt_classes].T.sigmoid()  # [G, R]
        scores = iou_classification_aware_score(gt_instances.gt_boxes, anchors, gt_class_prob, self.alpha)
        return promote_by_score(matched_idxs, labels, scores, self.score_threshold)
