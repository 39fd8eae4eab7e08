"""Non-maximum suppression (torchvision's kernels)."""

from __future__ import annotations

import math

import torch
from torchvision.ops import boxes as box_ops
from torchvision.ops import nms  # noqa: F401  re-exported: nms(boxes [N,4] XYXY, scores [N], iou) -> kept idx

__all__ = ["nms", "batched_nms", "batched_nms_top"]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS run independently per category `idxs`.

    Args:
        boxes: [N, 4] XYXY (computed in float32, as detectron2 does).
        scores: [N].
        idxs: [N] int64 category of each box; boxes of different categories never suppress each other.
        iou_threshold: boxes overlapping a higher-scoring one by IoU > threshold are dropped.

    Returns:
        int64 indices of the kept boxes, sorted by decreasing score.
    """
    assert boxes.shape[-1] == 4, f"batched_nms expects [N, 4] boxes, got {tuple(boxes.shape)}"
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return _batched_nms_traceable(boxes, scores, idxs, iou_threshold)
    return box_ops.batched_nms(boxes.float(), scores, idxs, iou_threshold)


def batched_nms_top(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float, max_keep: int
) -> torch.Tensor:
    """``batched_nms(boxes, scores, idxs, iou_threshold)[:max_keep]``, without running the NMS on the boxes
    that cannot be among the ``max_keep`` best kept ones (``max_keep < 0``: all of them).

    Greedy NMS keeps a box or not from the higher-scoring boxes of its own category alone. So the boxes
    kept among each category's ``t`` best are kept by the full NMS too: when ``max_keep`` or more of them
    are, the ``max_keep``-th best of their scores is a lower bound of the answer's scores, and every box
    scoring under it is dropped before the full NMS. The result is the same (the order of exactly equal
    scores aside); with SSD's 90 classes x 400 candidates the full NMS runs on a few hundred boxes instead of
    36,000. Arguments and result as for `batched_nms`.
    """
    n = scores.numel()
    # a trace records one path: the data-dependent shortcut below would be frozen into it (and its stable
    # sorts do not export to ONNX), so an exported graph runs the full NMS
    tracing = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
    if tracing or max_keep < 0 or n <= 4 * max_keep:
        return batched_nms(boxes, scores, idxs, iou_threshold)[: max_keep if max_keep >= 0 else n]
    # each box's rank in its category by decreasing score: class-major order, scores descending inside
    order = scores.argsort(descending=True, stable=True)
    order = order[idxs[order].argsort(stable=True)]
    _, counts = torch.unique_consecutive(idxs[order], return_counts=True)
    starts = torch.repeat_interleave(counts.cumsum(0) - counts, counts)
    rank = torch.arange(n, device=scores.device) - starts
    per_category = max(1, math.ceil(2 * max_keep / counts.numel()))
    probe = order[rank < per_category]
    kept = batched_nms(boxes[probe], scores[probe], idxs[probe], iou_threshold)
    if kept.numel() < max_keep:
        return batched_nms(boxes, scores, idxs, iou_threshold)[:max_keep]
    bound = scores[probe[kept[max_keep - 1]]]
    candidates = (scores >= bound).nonzero().squeeze(1)
    keep = batched_nms(boxes[candidates], scores[candidates], idxs[candidates], iou_threshold)[:max_keep]
    return candidates[keep]


def _batched_nms_traceable(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """One NMS over all categories, each moved to its own region of the plane (a trace cannot loop over the
    categories present). The shifted boxes are float64, so that the offsets cost no precision and the kept set
    is the eager one (torchvision's per-category loop on float32 boxes). The offset's maximum includes a zero,
    so that an image without candidates (nothing above the score threshold) runs too: the maximum of an empty
    tensor is an error, and the graph is the same for every picture."""
    boxes = boxes.double()
    offsets = idxs.to(boxes) * (torch.cat([boxes.flatten(), boxes.new_zeros(1)]).max() + 1)
    return nms(boxes + offsets[:, None], scores.double(), iou_threshold)
