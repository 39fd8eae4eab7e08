"""Non-maximum suppression (torchvision's kernels)."""

from __future__ import annotations

import torch
from torchvision.ops import boxes as box_ops
from torchvision.ops import nms  # noqa: F401  re-exported: nms(boxes [N,4] XYXY, scores [N], iou) -> kept idx

__all__ = ["nms", "batched_nms"]


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


def _batched_nms_traceable(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """One NMS over all categories, each moved to its own region of the plane (a trace cannot loop over the
    categories present). The shifted boxes are float64, so that the offsets cost no precision and the kept set
    is the eager one (torchvision's per-category loop on float32 boxes)."""
    boxes = boxes.double()
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores.double(), iou_threshold)
