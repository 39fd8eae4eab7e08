"""Helpers shared by proposal generators: test-time proposal selection and ground-truth injection."""

from __future__ import annotations

import math

import torch

from net_detr2.layers import batched_nms_top, cat
from net_detr2.structures import Boxes, Instances

__all__ = ["find_top_rpn_proposals", "add_ground_truth_to_proposals"]


def find_top_rpn_proposals(
    proposals: list[torch.Tensor],
    pred_objectness_logits: list[torch.Tensor],
    image_sizes: list[tuple[int, int]],
    nms_thresh: float,
    pre_nms_topk: int,
    post_nms_topk: int,
    min_box_size: float,
    training: bool,
) -> list[Instances]:
    """Per image: top-k per level, clip, drop small boxes, NMS within each level, keep the post-NMS top-k.

    Args:
        proposals: per level [N, Hi*Wi*A, 4] decoded boxes.
        pred_objectness_logits: per level [N, Hi*Wi*A].
        image_sizes: (h, w) of each image, for clipping.
    Returns:
        per image Instances with ``proposal_boxes`` and ``objectness_logits``, sorted by logit descending.
    """
    num_images = len(image_sizes)
    device = proposals[0].device
    batch_idx = torch.arange(num_images, device=device)
    top_scores, top_boxes, level_ids = [], [], []
    for level, (boxes_l, logits_l) in enumerate(zip(proposals, pred_objectness_logits)):
        k = min(logits_l.shape[1], pre_nms_topk)
        scores_l, idx = logits_l.topk(k, dim=1)
        top_scores.append(scores_l)
        top_boxes.append(boxes_l[batch_idx[:, None], idx])
        level_ids.append(torch.full((k,), level, dtype=torch.int64, device=device))
    top_scores = cat(top_scores, dim=1)
    top_boxes = cat(top_boxes, dim=1)
    level_ids = cat(level_ids)

    results = []
    for n, image_size in enumerate(image_sizes):
        boxes = Boxes(top_boxes[n])
        scores = top_scores[n]
        lvl = level_ids
        valid = torch.isfinite(boxes.tensor).all(dim=1) & torch.isfinite(scores)
        # while tracing (export), always filter: the traced example's outcome must not decide for every input
        tracing = torch.jit.is_tracing()
        if tracing or not valid.all():
            if training:
                raise FloatingPointError("Predicted boxes or scores contain Inf/NaN. Training has diverged.")
            boxes, scores, lvl = boxes[valid], scores[valid], lvl[valid]
        boxes.clip(image_size)
        keep = boxes.nonempty(threshold=min_box_size)
        if tracing or not keep.all():
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
        keep = batched_nms_top(boxes.tensor, scores, lvl, nms_thresh, post_nms_topk)
        res = Instances(image_size)
        res.proposal_boxes = boxes[keep]
        res.objectness_logits = scores[keep]
        results.append(res)
    return results


def add_ground_truth_to_proposals(gt: list[Instances] | list[Boxes], proposals: list[Instances]) -> list[Instances]:
    """Append each image's ground-truth boxes to its proposals (so every GT has a perfect proposal in training).

    Args:
        gt: per image Instances with ``gt_boxes``, or Boxes.
        proposals: per image Instances with ``proposal_boxes`` and ``objectness_logits``.
    """
    if gt is None:
        return proposals
    if len(gt) != len(proposals):
        raise ValueError(f"add_ground_truth_to_proposals: {len(gt)} ground-truth lists for {len(proposals)} images")
    return [_add_gt_one(g, p) for g, p in zip(gt, proposals)]


def _add_gt_one(gt, proposals: Instances) -> Instances:
    gt_boxes = gt.gt_boxes if isinstance(gt, Instances) else gt
    device = proposals.objectness_logits.device
    # a logit whose sigmoid is ~1: the GT "proposals" look certain
    gt_logit_value = math.log((1.0 - 1e-10) / (1 - (1.0 - 1e-10)))
    gt_logits = torch.full((len(gt_boxes),), gt_logit_value, device=device)
    gt_prop = Instances(proposals.image_size, proposal_boxes=gt_boxes.to(device), objectness_logits=gt_logits)
    for name, _ in proposals.get_fields().items():
        if name not in ("proposal_boxes", "objectness_logits"):
            raise ValueError(f"add_ground_truth_to_proposals: proposals have an extra field '{name}' with no GT value")
    return Instances.cat([proposals, gt_prop])
