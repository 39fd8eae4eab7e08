"""Training-time statistics of the IAC assignment and the DC coefficient (what each reading does over training).

Pure tensor functions; `DCRetinaNet` sums them over a batch and puts them into the event storage once per
iteration (one host copy for all of them). For the assignment, every reading of Eq. 5 is evaluated on the
same predictions, so a run shows what the rules it does *not* use would have promoted (no feedback: the
classifier is the one trained by the run's own rule).
"""

from __future__ import annotations

import torch

from net_detr2.modeling.matcher import Matcher
from net_detr2.structures import Boxes, Instances, pairwise_iou

from .assignment import CASE_ORDERS, OVERLAPS, IoUClassificationAwareMatcher

__all__ = ["ASSIGNMENT_STATISTICS", "READINGS", "assignment_statistics", "coefficient_statistics"]

#: every (case_order, overlap) reading of Eq. 4-5
READINGS: tuple[tuple[str, str], ...] = tuple((order, overlap) for order in CASE_ORDERS for overlap in OVERLAPS)
#: the columns of `assignment_statistics`
ASSIGNMENT_STATISTICS = (
    "promoted",
    "size_ratio_sum",
    "smaller_half",
    "larger_double",
    "p_hat_sum",
    "iou_sum",
    "most_for_one_gt",
)


def assignment_statistics(
    anchors: Boxes,
    gt_instances: Instances,
    pred_logits: list[torch.Tensor],
    iou_matcher: Matcher,
    alpha: float,
    score_threshold: float,
    readings: tuple[tuple[str, str], ...] = READINGS,
) -> torch.Tensor:
    """Anchors each reading promotes in one image, beyond the IoU rule's positives.

    Args:
        anchors: R anchors; gt_instances: the image's G ground truths; pred_logits: per level [Ri, K].
        iou_matcher: the IoU rule the readings extend.
        readings: (case_order, overlap) pairs, each applied as `IoUClassificationAwareMatcher.promote`.
    Returns:
        [len(readings), 7] sums over the promoted anchors (columns `ASSIGNMENT_STATISTICS`): their number,
        the sum of their size ratios sqrt(area(anchor) / area(gt)), how many have a ratio < 0.5 and > 2, the
        sum of p^ (probability of the gt's class) and of their IoU with the ground truth they are promoted for;
        last, the most anchors promoted for one ground truth.
    """
    out = torch.zeros(len(readings), len(ASSIGNMENT_STATISTICS))
    if len(gt_instances) == 0:
        return out
    matched_idxs, labels = iou_matcher.match_anchors(anchors, gt_instances)
    gt_boxes = gt_instances.gt_boxes
    prob = torch.cat(pred_logits)[:, gt_instances.gt_classes].T.detach().float().sigmoid()  # [G, R]
    iou = pairwise_iou(gt_boxes, anchors)
    gt_area, anchor_area = gt_boxes.area(), anchors.area()
    arange = torch.arange(len(anchors), device=prob.device)
    rows = []
    for case_order, overlap in readings:
        rule = IoUClassificationAwareMatcher(iou_matcher, alpha, score_threshold, case_order, overlap)
        new_idxs, new_labels = rule.promote(anchors, gt_instances, prob, matched_idxs, labels)
        is_promoted = (new_labels == 1) & (labels != 1)
        promoted = is_promoted.float()
        ratio = (anchor_area / gt_area[new_idxs].clamp(min=1e-6)).sqrt()
        rows.append(
            torch.stack(
                [
                    promoted.sum(),
                    (promoted * ratio).sum(),
                    (promoted * (ratio < 0.5)).sum(),
                    (promoted * (ratio > 2.0)).sum(),
                    (promoted * prob[new_idxs, arange]).sum(),
                    (promoted * iou[new_idxs, arange]).sum(),
                    torch.bincount(new_idxs[is_promoted], minlength=len(gt_boxes)).max(),
                ]
            )
        )
    return torch.stack(rows).float().cpu()


def coefficient_statistics(coefficient: torch.Tensor, normalized: torch.Tensor) -> dict[str, torch.Tensor]:
    """Summary of lambda (Eq. 1) and lambda' (Eq. 2) over a batch's positives ([N] each; N may be 0)."""
    if coefficient.numel() == 0:
        return {}
    lam, lam_n = coefficient.detach().float(), normalized.detach().float()
    return {
        "lambda_mean": lam.mean(),
        "lambda_min": lam.min(),
        "lambda_max": lam.max(),
        "lambda_norm_mean": lam_n.mean(),
        "lambda_norm_min": lam_n.min(),
        "lambda_norm_max": lam_n.max(),
        "lambda_norm_std": lam_n.std(unbiased=False),
    }
