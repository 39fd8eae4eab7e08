"""Turn a baseline config's ``StandardROIHeads`` node into an :class:`IAROIHeads` node."""

from __future__ import annotations

from typing import Any

from .ia_roi_heads import IAROIHeads

__all__ = ["IA_DEFAULTS", "use_inverted_attention"]

#: Our defaults (see projects/InvertedAttention/README.md, "Our choices"): the authors' public code.
IA_DEFAULTS: dict[str, Any] = dict(
    inversion_strategy="soft",
    orientation="spatial",
    roi_selection="probability_drop",
    spatial_drop_fraction=1.0 / 3.0,
    hard_threshold=0.5,
    channel_fraction=0.8,
    fg_fraction=1.0 / 5.0,
    bg_fraction=1.0 / 30.0,
    random_roi_fraction=0.2,
)


def use_inverted_attention(roi_heads: Any, **options: Any) -> Any:
    """Swap the target of a LazyCall ``roi_heads`` node to :class:`IAROIHeads`, in place.

    Every IA argument is written into the node explicitly (``IA_DEFAULTS`` updated by
    ``options``), so a saved config shows the variant that ran. All other arguments (pooler,
    box head, predictor, sampling) are left as the baseline's.

    Args:
        roi_heads: LazyCall node of a ``StandardROIHeads`` (e.g. ``model.roi_heads``).
        options: overrides of ``IA_DEFAULTS``, e.g. ``orientation="spatial+channel"``.

    Returns:
        the same node.
    """
    unknown = sorted(set(options) - set(IA_DEFAULTS))
    if unknown:
        raise KeyError(f"use_inverted_attention: unknown option(s) {unknown}; expected among {sorted(IA_DEFAULTS)}")
    roi_heads._target_ = IAROIHeads
    for key, value in {**IA_DEFAULTS, **options}.items():
        roi_heads[key] = value
    return roi_heads
