"""Inverted Attention maps and masks (Huang et al., "Improving Object Detection with Inverted Attention").

Pure tensor functions, vectorised over RoIs; :class:`~.ia_roi_heads.IAROIHeads` wires them into the
ROI heads. Shapes: ``R`` RoIs, ``C`` channels, ``H x W`` pooled resolution.

Pipeline (Algorithm 1 of the paper):

1. :func:`gradient_attention` — channel weights ``w`` = spatial mean of the gradient of the
   ground-truth-class logit, attention ``M = sum_c w_c F_c`` (Eq. 1, Grad-CAM without the ReLU).
2. :func:`spatial_inversion_mask` — inverted spatial map ``A^s`` (Eq. 2) by one of the four
   strategies of Table 2; :func:`channel_inversion_mask` — inverted channel vector ``A^c`` (Eq. 3).
3. :func:`inverted_attention_mask` — combine them per orientation (Table 3, Eq. 4).
4. :func:`select_top_per_group` / :func:`select_random` — which RoIs receive the mask.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "INVERSION_STRATEGIES",
    "ORIENTATIONS",
    "ROI_SELECTIONS",
    "num_to_drop",
    "gradient_attention",
    "normalize_attention",
    "spatial_inversion_mask",
    "channel_inversion_mask",
    "inverted_attention_mask",
    "select_top_per_group",
    "select_random",
    "gt_probability",
]

#: Table 2: how the spatial attention map is inverted.
INVERSION_STRATEGIES = ("random", "overturn", "hard", "soft")
#: Table 3: along which dimensions the inverted attention acts.
ORIENTATIONS = ("spatial", "channel", "spatial+channel")
#: Which RoIs receive the mask: ranked by the drop in ground-truth probability the mask causes
#: (the authors' public code), or a uniformly random share (the paper's text).
ROI_SELECTIONS = ("probability_drop", "random")

# Guards ceil() against products such as 0.7 * 10 = 7.000000000000001.
_ROUNDING_SLACK = 1e-6


def num_to_drop(fraction: float, total: int) -> int:
    """Number of elements a share ``fraction`` of ``total`` zeroes: ``ceil(fraction * total)``.

    Rounding up follows the authors' code (a third of a 7x7 map drops 17 positions).

    Args:
        fraction: share in [0, 1].
        total: number of elements.

    Returns:
        int in [0, total].
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"drop fraction must lie in [0, 1], got {fraction}")
    return min(total, max(0, math.ceil(fraction * total - _ROUNDING_SLACK)))


def gradient_attention(features: torch.Tensor, grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient-guided attention (Eq. 1).

    Args:
        features: (R, C, H, W) pooled RoI features ``F``.
        grads: (R, C, H, W) gradient ``G`` of each RoI's ground-truth-class logit w.r.t. ``F``.

    Returns:
        attention: (R, H, W) ``M = sum_c w_c F_c``.
        weights: (R, C) channel sensitivities ``w`` (global average pool of ``G``).
    """
    if features.shape != grads.shape or features.dim() != 4:
        raise ValueError(
            f"features and grads must both be (R, C, H, W), got {tuple(features.shape)} and {tuple(grads.shape)}"
        )
    weights = grads.mean(dim=(2, 3))
    attention = torch.einsum("rc,rchw->rhw", weights, features)
    return attention, weights


def normalize_attention(attention: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Min-max normalise each RoI's map to [0, 1] (a constant map becomes all zeros).

    Args:
        attention: (R, H, W).

    Returns:
        (R, H, W) in [0, 1].
    """
    flat = attention.flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(eps)).view_as(attention)


def _zero_top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(R, N) scores -> (R, N) float mask with exactly the ``k`` largest entries of each row set to 0."""
    mask = torch.ones_like(scores)
    if k > 0:
        top = scores.topk(k, dim=1).indices
        mask.scatter_(1, top, 0.0)
    return mask


def spatial_inversion_mask(
    attention: torch.Tensor,
    strategy: str = "soft",
    drop_fraction: float = 1.0 / 3.0,
    hard_threshold: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Spatial inverted attention map ``A^s`` (Eq. 2), one per RoI (Table 2 strategies).

    - ``"soft"``: zero the ``ceil(drop_fraction * H * W)`` positions of highest attention (default).
    - ``"hard"``: zero the positions whose min-max normalised attention exceeds ``hard_threshold``.
    - ``"overturn"``: ``1 - normalised attention`` (continuous, keeps the background's weight).
    - ``"random"``: zero ``ceil(drop_fraction * H * W)`` positions drawn uniformly at random.

    Args:
        attention: (R, H, W) attention ``M``.
        strategy: one of :data:`INVERSION_STRATEGIES`.
        drop_fraction: share of positions zeroed by "soft" and "random".
        hard_threshold: threshold on the normalised map for "hard".
        generator: random generator for "random" (None: torch's global one).

    Returns:
        (R, H, W) float mask in [0, 1], no gradient.
    """
    if attention.dim() != 3:
        raise ValueError(f"attention must be (R, H, W), got shape {tuple(attention.shape)}")
    attention = attention.detach()
    flat = attention.flatten(1)
    if strategy == "soft":
        mask = _zero_top_k(flat, num_to_drop(drop_fraction, flat.shape[1]))
    elif strategy == "random":
        device = flat.device if generator is None else generator.device
        scores = torch.rand(flat.shape, generator=generator, device=device).to(flat.device)
        mask = _zero_top_k(scores, num_to_drop(drop_fraction, flat.shape[1])).to(flat.dtype)
    elif strategy == "hard":
        mask = (normalize_attention(attention).flatten(1) <= hard_threshold).to(flat.dtype)
    elif strategy == "overturn":
        mask = 1.0 - normalize_attention(attention).flatten(1)
    else:
        raise ValueError(f"Unknown inversion strategy {strategy!r}; expected one of {INVERSION_STRATEGIES}")
    return mask.view_as(attention)


def channel_inversion_mask(weights: torch.Tensor, fraction: float = 0.8) -> torch.Tensor:
    """Channel inverted attention vector ``A^c`` (Eq. 3): 0 on the most sensitive channels.

    The threshold ``T_c`` is chosen per RoI so that the ``ceil(fraction * C)`` channels with the
    largest weight ``w`` are the ones marked 0.

    Args:
        weights: (R, C) channel sensitivities ``w``.
        fraction: share of channels marked sensitive.

    Returns:
        (R, C) float mask of 0 (sensitive) and 1.
    """
    if weights.dim() != 2:
        raise ValueError(f"weights must be (R, C), got shape {tuple(weights.shape)}")
    return _zero_top_k(weights.detach(), num_to_drop(fraction, weights.shape[1]))


def inverted_attention_mask(
    attention: torch.Tensor,
    weights: torch.Tensor,
    strategy: str = "soft",
    orientation: str = "spatial",
    spatial_drop_fraction: float = 1.0 / 3.0,
    channel_fraction: float = 0.8,
    hard_threshold: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The mask ``A`` multiplied onto the pooled features (Eq. 7), per orientation (Table 3).

    - ``"spatial"``: ``A^s`` on every channel (the authors' code; default).
    - ``"channel"``: ``A^c`` — the ``channel_fraction`` most sensitive channels are dropped whole.
    - ``"spatial+channel"``: Eq. 4 — ``A^s`` on the sensitive channels (``A^c = 0``), 1 elsewhere.

    Args:
        attention: (R, H, W) attention ``M``.
        weights: (R, C) channel weights ``w``.
        strategy, spatial_drop_fraction, hard_threshold, generator: see :func:`spatial_inversion_mask`.
        orientation: one of :data:`ORIENTATIONS`.
        channel_fraction: see :func:`channel_inversion_mask`.

    Returns:
        float mask broadcastable to (R, C, H, W): (R, 1, H, W) for "spatial", (R, C, 1, 1) for
        "channel", (R, C, H, W) for "spatial+channel".
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"Unknown inversion orientation {orientation!r}; expected one of {ORIENTATIONS}")
    if orientation == "channel":
        return channel_inversion_mask(weights, channel_fraction)[:, :, None, None]
    spatial = spatial_inversion_mask(attention, strategy, spatial_drop_fraction, hard_threshold, generator)
    if orientation == "spatial":
        return spatial[:, None]
    sensitive = 1.0 - channel_inversion_mask(weights, channel_fraction)
    # Eq. 4 as arithmetic: sensitive channels take A^s, the others stay 1.
    return 1.0 - sensitive[:, :, None, None] * (1.0 - spatial[:, None])


def select_top_per_group(
    scores: torch.Tensor, is_foreground: torch.Tensor, fg_fraction: float, bg_fraction: float
) -> torch.Tensor:
    """Choose the RoIs with the largest scores, separately among foreground and background.

    ``round(fg_fraction * #fg)`` foreground and ``round(bg_fraction * #bg)`` background RoIs are
    chosen (ties broken by position). Runs without a host-device sync (no ``.item()``).

    Args:
        scores: (R,) ranking score, e.g. the ground-truth probability drop caused by the mask.
        is_foreground: (R,) bool.
        fg_fraction, bg_fraction: shares in [0, 1].

    Returns:
        (R,) bool, True for chosen RoIs.
    """
    for name, value in (("fg_fraction", fg_fraction), ("bg_fraction", bg_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
    if scores.shape != is_foreground.shape or scores.dim() != 1:
        raise ValueError(
            f"scores and is_foreground must both be (R,), got {tuple(scores.shape)} and {tuple(is_foreground.shape)}"
        )
    is_foreground = is_foreground.bool()
    order = torch.argsort(scores, descending=True, stable=True)
    fg_sorted = is_foreground[order]
    rank_fg = fg_sorted.long().cumsum(0) - 1
    rank_bg = (~fg_sorted).long().cumsum(0) - 1
    num_fg = is_foreground.sum().float()
    num_bg = is_foreground.numel() - num_fg
    k_fg = torch.round(num_fg * fg_fraction)
    k_bg = torch.round(num_bg * bg_fraction)
    chosen_sorted = torch.where(fg_sorted, rank_fg < k_fg, rank_bg < k_bg)
    chosen = torch.empty_like(chosen_sorted)
    chosen[order] = chosen_sorted
    return chosen


def select_random(
    num_rois: int, fraction: float, device: torch.device | str = "cpu", generator: torch.Generator | None = None
) -> torch.Tensor:
    """Choose ``round(fraction * num_rois)`` RoIs uniformly at random (the paper's "20%").

    Returns:
        (num_rois,) bool.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"random RoI fraction must lie in [0, 1], got {fraction}")
    k = int(round(fraction * num_rois))
    perm_device = device if generator is None else generator.device
    perm = torch.randperm(num_rois, generator=generator, device=perm_device)
    chosen = torch.zeros(num_rois, dtype=torch.bool, device=perm_device)
    chosen[perm[:k]] = True
    return chosen.to(device)


def gt_probability(logits: torch.Tensor, gt_classes: torch.Tensor) -> torch.Tensor:
    """Softmax probability of each RoI's ground-truth class (background = last column).

    Args:
        logits: (R, K + 1) class logits.
        gt_classes: (R,) int64 in [0, K].

    Returns:
        (R,) probabilities.
    """
    return logits.softmax(dim=1).gather(1, gt_classes[:, None]).squeeze(1)
