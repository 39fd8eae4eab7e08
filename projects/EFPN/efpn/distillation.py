"""Cross-resolution distillation loss: the foreground-background-balanced L1 (Eq. 6-8).

``L_fbb(F, F_t) = mean|F - F_t| + lambda * (sum over positive positions, all channels |F - F_t|)
/ (number of positive positions * C)``, positive positions = feature cells covered by a
ground-truth box mapped to the feature stride and rounded outward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["boxes_to_feature_mask", "fbb_loss"]


def boxes_to_feature_mask(boxes: Sequence[torch.Tensor], stride: int, feature_size: tuple[int, int]) -> torch.Tensor:
    """Mark the feature cells covered by boxes, per image.

    Args:
        boxes: one [N_i, 4] (x0, y0, x1, y1) tensor per image, in input-image pixels.
        stride: the feature map's stride (cell (y, x) covers pixels [s*y, s*y+s) x [s*x, s*x+s)).
        feature_size: (H, W) of the feature map.

    Returns:
        bool [B, H, W]: True on cells touched by a box. A box maps to cells
        [floor(x0/s), ceil(x1/s)) x [floor(y0/s), ceil(y1/s)) ("rounded outward"), clipped to the map.
    """
    H, W = int(feature_size[0]), int(feature_size[1])
    B = len(boxes)
    if B == 0:
        raise ValueError("boxes_to_feature_mask: no images given")
    device = boxes[0].device
    counts = torch.tensor([len(b) for b in boxes], device=device)
    all_boxes = torch.cat([b.reshape(-1, 4).float() for b in boxes], dim=0)
    batch_idx = torch.repeat_interleave(torch.arange(B, device=device), counts)
    x0 = torch.floor(all_boxes[:, 0] / stride).long().clamp(0, W)
    y0 = torch.floor(all_boxes[:, 1] / stride).long().clamp(0, H)
    x1 = torch.ceil(all_boxes[:, 2] / stride).long().clamp(0, W)
    y1 = torch.ceil(all_boxes[:, 3] / stride).long().clamp(0, H)
    # Inverted boxes cover nothing: their +1/-1 corners below then cancel.
    x1 = torch.maximum(x1, x0)
    y1 = torch.maximum(y1, y0)
    # 2-D difference array: +1 at the top-left corner, -1 right of / below, +1 diagonally; the
    # double prefix sum then counts the boxes covering each cell. O(H*W + N), no per-box loop.
    diff = torch.zeros(B, H + 1, W + 1, device=device, dtype=torch.int32)
    ones = torch.ones_like(x0, dtype=torch.int32)
    for ys, xs, sign in ((y0, x0, 1), (y0, x1, -1), (y1, x0, -1), (y1, x1, 1)):
        diff.index_put_((batch_idx, ys, xs), sign * ones, accumulate=True)
    coverage = diff.cumsum(dim=1).cumsum(dim=2)[:, :H, :W]
    return coverage > 0


def fbb_loss(
    student: torch.Tensor, teacher: torch.Tensor, positive_mask: torch.Tensor = None, lam: float = 1.0
) -> torch.Tensor:
    """Foreground-background-balanced L1 loss.

    Args:
        student: [B, C, H, W] generated features (P2' or P3').
        teacher: [B, C, H, W] target features (P2 / P3 of the 2x input), no gradient needed.
        positive_mask: bool [B, H, W] from `boxes_to_feature_mask`; None or lam == 0 -> global term only.
        lam: weight of the positive-patch term.

    Returns:
        scalar: mean |student - teacher| over all elements + lam * mean over positive elements
        (0 when there is no positive cell).
    """
    if student.shape != teacher.shape:
        raise ValueError(
            f"fbb_loss: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} features differ in shape"
        )
    diff = (student - teacher).abs()
    loss = diff.mean()
    if positive_mask is None or lam == 0:
        return loss
    if positive_mask.shape != (student.shape[0],) + tuple(student.shape[2:]):
        raise ValueError(
            f"fbb_loss: positive_mask {tuple(positive_mask.shape)} does not match features {tuple(student.shape)}"
        )
    mask = positive_mask.unsqueeze(1).to(diff.dtype)
    num_positive = mask.sum() * diff.shape[1]
    positive = (diff * mask).sum() / num_positive.clamp(min=1.0)
    return loss + lam * positive
