"""Turn a baseline config's ``RetinaNet`` node into a :class:`DCRetinaNet` node (one Table-2 row)."""

from __future__ import annotations

from typing import Any

from .meta_arch import DCRetinaNet

__all__ = ["DC_DEFAULTS", "use_dc_retinanet"]

#: Hyper-parameters of the three components (NOTES.md, "Modified RetinaNet"); the switches are set per row.
DC_DEFAULTS: dict[str, Any] = dict(
    iac_alpha=0.5,
    iac_score_threshold=0.6,
    iac_case_order="negative_first",  # "positive_first" collapses training on shapes (README, issue 19)
    iac_overlap="min_area",
    iac_warmup_iters=0,
    dc_eps=1e-6,
    dc_offset_units="gt_size",
    dc_warmup_iters=0,
    cl_nms_beta=1.0,
    log_statistics=10,  # every 10 iterations (0: off); changes nothing in training
)


def use_dc_retinanet(model: Any, *, iac_assignment: bool, dc_loss: bool, cl_nms: bool, **options: Any) -> Any:
    """Swap the target of a LazyCall ``RetinaNet`` node to :class:`DCRetinaNet`, in place.

    Every switch and hyper-parameter is written into the node explicitly, so a saved config shows the
    variant that ran; all RetinaNet arguments stay as the baseline's.

    Args:
        model: LazyCall node of a ``RetinaNet`` (e.g. ``model`` of configs/common/models/retinanet.py).
        iac_assignment, dc_loss, cl_nms: the three components (Table 2's columns).
        options: overrides of ``DC_DEFAULTS``.
    Returns:
        the same node.
    """
    unknown = sorted(set(options) - set(DC_DEFAULTS))
    if unknown:
        raise KeyError(f"use_dc_retinanet: unknown option(s) {unknown}; expected among {sorted(DC_DEFAULTS)}")
    model._target_ = DCRetinaNet
    model.iac_assignment = iac_assignment
    model.dc_loss = dc_loss
    model.cl_nms = cl_nms
    for key, value in {**DC_DEFAULTS, **options}.items():
        setattr(model, key, value)
    return model
