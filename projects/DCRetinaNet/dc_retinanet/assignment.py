"""IoU-classification-aware anchor assignment (Eq. 4-5).

An anchor that overlaps a ground truth too little for the IoU rule but already classifies it well
(irregular shapes: much of the box is background, so the anchors on the object can have a low IoU) is
promoted to positive. `IoUClassificationAwareMatcher` is the rule as an anchor matcher: pass it as
``RetinaNet(anchor_matcher=...)``.

The summary paper leaves three things open; each is a setting (README, "Our reading"):

* ``case_order`` -- Eq. 5's cases overlap (an anchor with IoU <= bg_threshold can have s >= score_threshold):
  ``"positive_first"`` lets the positive case win, so any non-positive anchor can be promoted (on `shapes`
  this collapses training: README);
  ``"negative_first"`` (the default) applies the 0 case first, so only the IoU-ignored band (bg <= IoU < fg)
  can be.
  Eq. 5 reads IoU_i and s_i of the same anchor-ground truth pair: under ``"negative_first"`` an anchor is
  promoted for a ground truth only if its IoU *with that ground truth* lies in the ignored band.
* ``overlap`` -- Eq. 4's geometric term: ``"min_area"`` = area(anchor ∩ gt) / min(area(anchor), area(gt))
  (1 for any anchor wholly inside the ground truth, or holding it, whatever its size); ``"iou"`` = IoU.
* ``warmup_iters`` -- no promotion before this training iteration (p^ of an untrained head means nothing).
"""

from __future__ import annotations

import torch

from net_detr2.layers import cat
from net_detr2.modeling.matcher import Matcher
from net_detr2.structures import Boxes, Instances, pairwise_intersection, pairwise_iou
from net_detr2.utils.events import get_event_storage, has_event_storage

__all__ = [
    "CASE_ORDERS",
    "OVERLAPS",
    "IoUClassificationAwareMatcher",
    "ignored_pairs",
    "iou_classification_aware_score",
    "overlap_term",
    "promote_by_score",
]

CASE_ORDERS = ("positive_first", "negative_first")
OVERLAPS = ("min_area", "iou")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"IoU-classification-aware assignment: {name} must be one of {choices}, got {value!r}")


def overlap_term(gt_boxes: Boxes, anchors: Boxes, overlap: str = "min_area") -> torch.Tensor:
    """Eq. 4's geometric term, [G, A] in [0, 1].

    ``"min_area"``: ``area(anchor ∩ gt) / min(area(anchor), area(gt))``; ``"iou"``: intersection over union.
    """
    _check_choice("overlap", overlap, OVERLAPS)
    inter = pairwise_intersection(gt_boxes, anchors)
    gt_area, anchor_area = gt_boxes.area()[:, None], anchors.area()[None, :]
    if overlap == "min_area":
        return inter / torch.minimum(gt_area, anchor_area).clamp(min=1e-6)
    return inter / (gt_area + anchor_area - inter).clamp(min=1e-6)


def iou_classification_aware_score(
    gt_boxes: Boxes, anchors: Boxes, gt_class_prob: torch.Tensor, alpha: float, overlap: str = "min_area"
) -> torch.Tensor:
    """Eq. 4: ``s = alpha * p^ + (1 - alpha) * overlap``, with ``overlap`` as in `overlap_term`.

    Args:
        gt_boxes: G ground-truth boxes; anchors: A anchors.
        gt_class_prob: [G, A] detached predicted probability of each ground truth's class at each anchor.
    Returns:
        [G, A] scores in [0, 1].
    """
    return alpha * gt_class_prob + (1.0 - alpha) * overlap_term(gt_boxes, anchors, overlap)


def ignored_pairs(iou: torch.Tensor, iou_matcher: Matcher) -> torch.Tensor:
    """[G, A] True where a (ground truth, anchor) pair's IoU lies in a band the IoU matcher labels -1
    (RetinaNet: 0.4 <= IoU < 0.5)."""
    band = torch.zeros_like(iou, dtype=torch.bool)
    for label, low, high in zip(iou_matcher.labels, iou_matcher.thresholds[:-1], iou_matcher.thresholds[1:]):
        if label == -1:
            band |= (iou >= low) & (iou < high)
    return band


def promote_by_score(
    matched_idxs: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor,
    score_threshold: float,
    promotable: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5 on top of the IoU matcher's result.

    Args:
        matched_idxs: [A] ground-truth index per anchor from the IoU matcher.
        labels: [A] its labels: 1 positive (IoU >= fg threshold), 0 negative (IoU < bg threshold), -1 ignored.
        scores: [G, A] IoU-classification-aware scores.
        promotable: [G, A] the (ground truth, anchor) pairs Eq. 5 may promote (None: all).
    Returns:
        (matched_idxs, labels) where every anchor that is not positive yet and has ``s >= score_threshold`` for
        some promotable ground truth becomes positive, matched to the one of its highest score. With
        ``score_threshold > 1`` nothing changes: the plain IoU assignment.
    """
    if scores.numel() == 0:
        return matched_idxs, labels
    if promotable is not None:
        scores = scores.masked_fill(~promotable, -1.0)  # scores lie in [0, 1]
    best_score, best_gt = scores.max(dim=0)
    promote = (best_score >= score_threshold) & (labels != 1)
    return torch.where(promote, best_gt, matched_idxs), torch.where(promote, torch.ones_like(labels), labels)


class IoUClassificationAwareMatcher:
    """Anchor matcher of Eq. 4-5: the IoU matcher's assignment, then every promotable anchor that scores
    ``s >= score_threshold`` (Eq. 4) for some ground truth becomes positive for the best one.

    An anchor matcher for `RetinaNet` (``anchor_matcher=``): it implements `Matcher.match_anchors`.

    Args:
        iou_matcher: the IoU rule it extends (RetinaNet's `Matcher`).
        alpha: weight of the predicted probability of the ground truth's class in Eq. 4.
        score_threshold: Eq. 5's threshold (above 1: never fires, the plain IoU assignment).
        case_order: ``"positive_first"`` or ``"negative_first"`` (module docstring; `ignored_pairs`).
        overlap: ``"min_area"`` or ``"iou"`` (`overlap_term`).
        warmup_iters: no promotion while the training iteration (the event storage's) is below this.
    """

    def __init__(
        self,
        iou_matcher: Matcher,
        alpha: float = 0.5,
        score_threshold: float = 0.6,
        case_order: str = "negative_first",
        overlap: str = "min_area",
        warmup_iters: int = 0,
    ):
        _check_choice("case_order", case_order, CASE_ORDERS)
        _check_choice("overlap", overlap, OVERLAPS)
        if warmup_iters < 0:
            raise ValueError(f"IoU-classification-aware assignment: warmup_iters must be >= 0, got {warmup_iters}")
        self.iou_matcher = iou_matcher
        self.alpha = alpha
        self.score_threshold = score_threshold
        self.case_order = case_order
        self.overlap = overlap
        self.warmup_iters = warmup_iters

    def promoting(self) -> bool:
        """Whether the warm-up is over (always, without a warm-up)."""
        if self.warmup_iters == 0:
            return True
        if not has_event_storage():
            raise RuntimeError(
                f"IoU-classification-aware assignment: warmup_iters={self.warmup_iters} needs the training "
                "iteration, read from the event storage; train inside `with EventStorage(start_iter):`"
            )
        return get_event_storage().iter >= self.warmup_iters

    def promote(
        self,
        anchors: Boxes,
        gt_instances: Instances,
        gt_class_prob: torch.Tensor,
        matched_idxs: torch.Tensor,
        labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 4-5 for one image on top of the IoU rule's (matched_idxs [R], labels [R]), whatever the warm-up.

        Args:
            gt_class_prob: [G, R] detached probability of each ground truth's class at each anchor.
        """
        gt_boxes = gt_instances.gt_boxes
        iou = pairwise_iou(gt_boxes, anchors)
        geometric = iou if self.overlap == "iou" else overlap_term(gt_boxes, anchors, self.overlap)
        scores = self.alpha * gt_class_prob + (1.0 - self.alpha) * geometric
        promotable = ignored_pairs(iou, self.iou_matcher) if self.case_order == "negative_first" else None
        return promote_by_score(matched_idxs, labels, scores, self.score_threshold, promotable)

    def match_anchors(
        self, anchors: Boxes, gt_instances: Instances, pred_logits: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One image (see `Matcher.match_anchors`). Without predictions (``pred_logits=None``) or during the
        warm-up there is no classification to be aware of: the IoU assignment."""
        matched_idxs, labels = self.iou_matcher.match_anchors(anchors, gt_instances)
        if pred_logits is None or len(gt_instances) == 0 or not self.promoting():
            return matched_idxs, labels
        gt_class_prob = cat(pred_logits)[:, gt_instances.gt_classes].T.detach().sigmoid()  # [G, R]
        return self.promote(anchors, gt_instances, gt_class_prob, matched_idxs, labels)
