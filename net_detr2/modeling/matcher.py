"""Matchers: assign each prediction (anchor, proposal, default box) to a ground truth.

`Matcher` labels by IoU bands (R-CNN, RetinaNet); `match_default_boxes` is SSD's rule;
`matched_classes` turns a match into the class labels the losses train on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from net_detr2.layers import nonzero_tuple
from net_detr2.structures import Boxes, Instances, pairwise_iou

__all__ = ["Matcher", "match_default_boxes", "matched_classes"]


class Matcher:
    """Match predictions to ground truth by a quality matrix (usually IoU).

    Every prediction takes its highest-quality ground truth; its label comes from the band of
    ``thresholds`` that quality falls in: with thresholds [0.3, 0.7] and labels [0, -1, 1],
    quality < 0.3 -> 0 (negative), [0.3, 0.7) -> -1 (ignored), >= 0.7 -> 1 (positive).

    Args:
        thresholds: increasing band limits.
        labels: one label per band (len(thresholds) + 1), each in {-1, 0, 1}.
        allow_low_quality_matches: also label positive, for each ground truth, the predictions
            with its highest quality (ties included), so that no ground truth goes unmatched.
    """

    def __init__(self, thresholds: Sequence[float], labels: Sequence[int], allow_low_quality_matches: bool = False):
        thresholds = list(thresholds)
        if thresholds[0] < 0:
            raise ValueError(f"Matcher: thresholds must be >= 0, got {thresholds}")
        if any(lo > hi for lo, hi in zip(thresholds[:-1], thresholds[1:])):
            raise ValueError(f"Matcher: thresholds must be increasing, got {thresholds}")
        if any(label not in (-1, 0, 1) for label in labels):
            raise ValueError(f"Matcher: labels must be in {{-1, 0, 1}}, got {list(labels)}")
        if len(labels) != len(thresholds) + 1:
            raise ValueError(
                f"Matcher: need len(thresholds) + 1 labels, got {len(labels)} for {len(thresholds)} thresholds"
            )
        self.thresholds = [-math.inf] + thresholds + [math.inf]
        self.labels = list(labels)
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """match_quality_matrix [M gt, N predictions] -> (matches int64 [N], match_labels int8 [N])."""
        if match_quality_matrix.dim() != 2:
            raise ValueError(f"Matcher: expected a 2-D [M, N] matrix, got shape {tuple(match_quality_matrix.shape)}")
        n = match_quality_matrix.size(1)
        if match_quality_matrix.numel() == 0:
            # no ground truth (or no prediction): everything gets the lowest band's label
            matches = match_quality_matrix.new_full((n,), 0, dtype=torch.int64)
            labels = match_quality_matrix.new_full((n,), self.labels[0], dtype=torch.int8)
            return matches, labels
        matched_vals, matches = match_quality_matrix.max(dim=0)
        match_labels = matches.new_full(matches.size(), 1, dtype=torch.int8)
        for label, low, high in zip(self.labels, self.thresholds[:-1], self.thresholds[1:]):
            band = (matched_vals >= low) & (matched_vals < high)
            match_labels[band] = label
        if self.allow_low_quality_matches:
            self.set_low_quality_matches_(match_labels, match_quality_matrix)
        return matches, match_labels

    def match_anchors(
        self, anchors: Boxes, gt_instances: Instances, pred_logits: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The anchor matcher interface of the dense detectors (RetinaNet), for one image: IoU of the
        ground-truth boxes with the anchors, labelled by the bands.

        Another anchor matcher (one that also looks at the predictions, e.g. DC-RetinaNet's
        IoU-classification-aware one) implements this same method and is passed as ``anchor_matcher``.

        Args:
            anchors: Boxes [R, 4], all levels concatenated.
            gt_instances: the image's ground truth (``gt_boxes``, ``gt_classes``).
            pred_logits: the image's per level [Ri, K] classification logits (not read by the IoU rule).
        Returns:
            (matches int64 [R], match_labels int8 [R] in {-1, 0, 1}), as `__call__`.
        """
        del pred_logits
        return self(pairwise_iou(gt_instances.gt_boxes, anchors))

    @staticmethod
    def set_low_quality_matches_(match_labels: torch.Tensor, match_quality_matrix: torch.Tensor) -> None:
        """Mark positive every prediction that is (one of) the best for some ground truth.

        Such a prediction keeps its own argmax ground truth in ``matches`` (detectron2's behaviour).
        """
        best_per_gt, _ = match_quality_matrix.max(dim=1)
        _, pred_inds = nonzero_tuple(match_quality_matrix == best_per_gt[:, None])
        match_labels[pred_inds] = 1


def match_default_boxes(iou: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """SSD matching: each prior takes its best ground truth if IoU >= threshold, and every ground truth
    additionally claims its single best prior (whatever the IoU).

    Args:
        iou: (G, P) IoU between ground truths and priors.
    Returns:
        matched_idxs: (P,) int64 index of the matched ground truth (0 where unmatched);
        is_fg: (P,) bool.
    """
    G, P = iou.shape
    if G == 0:
        return iou.new_zeros(P, dtype=torch.long), iou.new_zeros(P, dtype=torch.bool)
    best_iou, matched = iou.max(dim=0)
    best_prior = iou.argmax(dim=1)  # (G,)
    gt_ids = torch.arange(G, device=iou.device)
    # A prior that is the best one for several ground truths goes to the highest index (deterministic).
    matched = matched.scatter_reduce(0, best_prior, gt_ids, reduce="amax", include_self=False)
    best_iou = best_iou.scatter(0, best_prior, best_iou.new_full((G,), 2.0))
    return matched, best_iou >= threshold


def matched_classes(
    gt_classes: torch.Tensor, matched_idxs: torch.Tensor, match_labels: torch.Tensor, background: int
) -> torch.Tensor:
    """The class label of each prediction from its match: the matched ground truth's class where the
    match label is 1, ``background`` where it is 0, -1 (ignored) where it is -1.

    Args:
        gt_classes: int64 [G] classes of the image's ground truths (G may be 0: all background).
        matched_idxs: int64 [R] index of each prediction's ground truth (any value where G = 0).
        match_labels: [R] in {-1, 0, 1} (a matcher's labels).
        background: the background label (K, the number of foreground classes).
    Returns:
        int64 [R].
    """
    if gt_classes.numel() == 0:
        return torch.full_like(matched_idxs, background)
    classes = gt_classes[matched_idxs]
    classes[match_labels == 0] = background
    classes[match_labels == -1] = -1
    return classes
