"""Random foreground/background sampling of labelled anchors or proposals."""

from __future__ import annotations

import torch

from net_detr2.layers import nonzero_tuple

__all__ = ["subsample_labels"]


def subsample_labels(
    labels: torch.Tensor, num_samples: int, positive_fraction: float, bg_label: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw up to ``num_samples`` elements, at most ``positive_fraction`` of them foreground.

    Args:
        labels: int [N]; -1 = ignore, ``bg_label`` = background, anything else = foreground.
        num_samples: total number wanted; background fills what foreground cannot.
        positive_fraction: the largest share of foreground in the sample.
        bg_label: the background label value.
    Returns:
        (pos_idx, neg_idx): int64 indices into ``labels`` of the sampled foreground and background.
    """
    positive = nonzero_tuple((labels != -1) & (labels != bg_label))[0]
    negative = nonzero_tuple(labels == bg_label)[0]
    num_pos = min(positive.numel(), int(num_samples * positive_fraction))
    num_neg = min(negative.numel(), num_samples - num_pos)
    perm1 = torch.randperm(positive.numel(), device=positive.device)[:num_pos]
    perm2 = torch.randperm(negative.numel(), device=negative.device)[:num_neg]
    return positive[perm1], negative[perm2]
