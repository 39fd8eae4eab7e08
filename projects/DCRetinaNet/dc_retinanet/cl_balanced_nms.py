"""Classification-Localization balanced NMS (Eq. 6-7), vectorised.

Greedy NMS keeps the most confident box of each cluster of overlapping boxes. CL-balanced NMS keeps
the cluster's box closest to the cluster's consensus centre among the confident ones: each box is
scored ``p + beta * dis``, where ``dis`` is 1 at the softmax(logit)-weighted centre of the cluster and
falls to 0 half a box diagonal away. The kept box is reported with the cluster's highest score.
"""

from __future__ import annotations

import torch
from torchvision.ops import batched_nms


def _slots_by_class(classes: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, int]:
    """Position of each element among the elements of its class (in the given order), and the largest class size."""
    counts = torch.bincount(classes, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    order = torch.sort(classes, stable=True).indices
    position = torch.empty_like(classes)
    position[order] = torch.arange(len(classes), device=classes.device) - starts[classes[order]]
    return position, int(counts.max()) if len(classes) else 0


def _first_overlapping_leader(
    leader_boxes: torch.Tensor,
    leader_cls: torch.Tensor,
    boxes: torch.Tensor,
    cls: torch.Tensor,
    num_classes: int,
    iou_threshold: float,
) -> torch.Tensor:
    """For each box, the index (into the score-sorted leaders) of the first leader of its class whose IoU
    with it exceeds the threshold; boxes and leaders are compared class by class in one padded batch."""
    leader_slot, max_leaders = _slots_by_class(leader_cls, num_classes)
    box_slot, max_boxes = _slots_by_class(cls, num_classes)
    padded_leaders = leader_boxes.new_zeros(num_classes, max_leaders, 4)
    padded_leaders[leader_cls, leader_slot] = leader_boxes
    padded_boxes = boxes.new_zeros(num_classes, max_boxes, 4)
    padded_boxes[cls, box_slot] = boxes
    lt = torch.maximum(padded_leaders[:, :, None, :2], padded_boxes[:, None, :, :2])
    rb = torch.minimum(padded_leaders[:, :, None, 2:], padded_boxes[:, None, :, 2:])
    inter = (rb - lt).clamp_(min=0).prod(dim=-1)
    area_l = (padded_leaders[..., 2:] - padded_leaders[..., :2]).prod(dim=-1)
    area_b = (padded_boxes[..., 2:] - padded_boxes[..., :2]).prod(dim=-1)
    # IoU > t  <=>  inter > t * (area_l + area_b - inter); padding has zero area and never overlaps
    overlaps = inter * (1 + iou_threshold) > iou_threshold * (area_l[:, :, None] + area_b[:, None, :])
    first_slot = overlaps.to(torch.uint8).argmax(dim=1)[cls, box_slot]
    # map (class, slot) back to the index in the score-sorted leader list
    leader_index = torch.full((num_classes, max_leaders), -1, dtype=torch.int64, device=boxes.device)
    leader_index[leader_cls, leader_slot] = torch.arange(len(leader_cls), device=boxes.device)
    return leader_index[cls, first_slot]


def nms_clusters(
    boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy NMS's clusters: the leaders (the boxes greedy NMS keeps, by decreasing score) and, for every
    box, the cluster it belongs to: its own for a leader, else the first (most confident) leader of its
    class that it overlaps by more than ``iou_threshold`` (the one that suppressed it).

    Args:
        boxes: [N, 4] XYXY; scores: [N]; classes: [N] int.
    Returns:
        leaders: [K] indices into the boxes; cluster: [N] int64 in [0, K).
    """
    device = boxes.device
    boxes = boxes.float()
    classes = classes.long()
    leaders = batched_nms(boxes, scores, classes, iou_threshold)
    cluster = torch.empty(len(boxes), dtype=torch.int64, device=device)
    cluster[leaders] = torch.arange(len(leaders), device=device)
    is_leader = torch.zeros(len(boxes), dtype=torch.bool, device=device)
    is_leader[leaders] = True
    suppressed = (~is_leader).nonzero().flatten()
    if len(suppressed):
        _, compact = torch.unique(classes, return_inverse=True)
        cluster[suppressed] = _first_overlapping_leader(
            boxes[leaders],
            compact[leaders],
            boxes[suppressed],
            compact[suppressed],
            int(compact.max()) + 1,
            iou_threshold,
        )
    return leaders, cluster


def consensus_closeness(boxes: torch.Tensor, logits: torch.Tensor, cluster: torch.Tensor, k: int) -> torch.Tensor:
    """Eq. 6-7's ``dis``: the consensus centre of each cluster, ``sum softmax(logit) * centre`` over its boxes
    (Eq. 6), and each box's closeness to it, ``max(0, 1 - |c - c^| / (diagonal / 2))``: 1 at the consensus
    centre, 0 half the box's diagonal away.

    Args:
        boxes: [N, 4] XYXY; logits: [N]; cluster: [N] in [0, k).
    Returns:
        [N] in [0, 1].
    """
    device = boxes.device
    boxes = boxes.float()
    f = logits.float()
    fmax = torch.full((k,), float("-inf"), device=device).scatter_reduce(0, cluster, f, "amax")
    w = torch.exp(f - fmax[cluster])
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    consensus = torch.zeros(k, 2, device=device).index_add_(0, cluster, centres * w[:, None])
    consensus /= torch.zeros(k, device=device).index_add_(0, cluster, w)[:, None]
    half_diag = torch.linalg.vector_norm(boxes[:, 2:] - boxes[:, :2], dim=1).clamp(min=1e-6) / 2
    return (1 - torch.linalg.vector_norm(centres - consensus[cluster], dim=1) / half_diag).clamp(min=0)


def cl_balanced_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor,
    iou_threshold: float,
    beta: float = 1.0,
    logits: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class CL-balanced NMS.

    Args:
        boxes: [N, 4] XYXY; scores: [N] probabilities p; classes: [N] int class of each box.
        iou_threshold: a box joins a cluster when its IoU with the cluster's leader exceeds this.
        beta: weight of the localisation term.
        logits: [N] classification logits for the consensus softmax; default ``logit(scores)``.
    Returns:
        keep: [K] indices of the selected boxes, one per cluster, by decreasing cluster score;
        kept_scores: [K] the cluster's highest score (reported with the selected box).
    """
    device = boxes.device
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=device), scores[:0]
    if logits is None:
        p = scores.clamp(1e-6, 1 - 1e-6)
        logits = torch.log(p) - torch.log1p(-p)
    # Greedy NMS leaders are exactly the clusters' most confident boxes.
    leaders, cluster = nms_clusters(boxes, scores, classes, iou_threshold)
    k = len(leaders)
    selection = scores.float() + beta * consensus_closeness(boxes, logits, cluster, k)

    # the best selection score per cluster; among ties the most confident box wins
    order = torch.argsort(scores, descending=True, stable=True)
    order = order[torch.argsort(selection[order], descending=True, stable=True)]
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=device)
    best_rank = torch.full((k,), len(order), dtype=torch.int64, device=device).scatter_reduce(0, cluster, rank, "amin")
    keep = order[best_rank]
    return keep, scores[leaders]


class CLBalancedNMS:
    """CL-balanced NMS as a drop-in replacement of per-class greedy NMS in other detectors.

    A callable ``(boxes [N, 4], scores [N], classes [N], iou_threshold) -> (keep [K], kept_scores [K])``,
    the contract of ``FastRCNNOutputLayers(test_nms=...)`` / ``fast_rcnn_inference(nms=...)``. The consensus
    softmax uses ``logit(score)`` (post-processing sees probabilities only). With ``beta = 0`` it keeps
    exactly greedy NMS's boxes.

    Args:
        beta: weight of the localisation term of Eq. 7.
    """

    def __init__(self, beta: float = 1.0):
        if beta < 0:
            raise ValueError(f"CLBalancedNMS: beta must be >= 0, got {beta}")
        self.beta = beta

    def __call__(
        self, boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return cl_balanced_nms(boxes, scores, classes, iou_threshold, beta=self.beta)

    def __repr__(self) -> str:
        return f"CLBalancedNMS(beta={self.beta})"
