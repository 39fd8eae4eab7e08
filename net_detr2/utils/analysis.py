"""Counting a detector's FLOPs, activations and parameters with fvcore.

fvcore's counters trace the model, so they see it through `net_detr2.export.TracingAdapter` (images in,
flattened detections out); module names in their results start with ``model.``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from torch import nn

from net_detr2.export.flatten import TracingAdapter

__all__ = ["flop_count", "activation_count", "parameter_count"]

logger = logging.getLogger(__name__)


def _quiet(analysis):
    return analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)


def flop_count(model: nn.Module, inputs: Sequence[dict]):
    """fvcore ``FlopCountAnalysis`` of the model's inference on ``inputs`` (one multiply-add = one flop).

    ``.total()``, ``.by_module()``, ``.by_operator()``, ``.unsupported_ops()``; see `fvcore.nn.flop_count_table`.
    """
    from fvcore.nn import FlopCountAnalysis

    adapter = TracingAdapter(model, inputs)
    return _quiet(FlopCountAnalysis(adapter, adapter.images).ancestor_mode("caller"))


def activation_count(model: nn.Module, inputs: Sequence[dict]):
    """fvcore ``ActivationCountAnalysis``: output elements of convolutions and matrix multiplications."""
    from fvcore.nn import ActivationCountAnalysis

    adapter = TracingAdapter(model, inputs)
    return _quiet(ActivationCountAnalysis(adapter, adapter.images).ancestor_mode("caller"))


def parameter_count(model: nn.Module) -> dict[str, Any]:
    """``{"": total, "backbone": ..., "backbone.bottom_up": ..., ...}``: parameters per module (fvcore)."""
    from fvcore.nn import parameter_count as fv_parameter_count

    return dict(fv_parameter_count(model))
