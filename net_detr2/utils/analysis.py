"""Counting a detector's FLOPs, activations and parameters with fvcore, and tracing it.

fvcore's counters (and ``torch.jit.trace``) need a module that takes tensors and returns tensors, while a
detector takes ``list[dict]`` and returns ``list[{"instances": Instances}]``. `TracingAdapter` bridges the
two: it holds the non-tensor parts of the inputs fixed, takes the images as positional tensors and returns
the detections flattened into a tuple of tensors (`flatten_detections`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["flatten_detections", "TracingAdapter", "flop_count", "activation_count", "parameter_count"]

logger = logging.getLogger(__name__)

# The fields of a detection, in the order `flatten_detections` returns them.
DETECTION_FIELDS = ("pred_boxes", "scores", "pred_classes")


def flatten_detections(outputs: Sequence[dict]) -> tuple[torch.Tensor, ...]:
    """``[{"instances": Instances}, ...]`` -> ``(boxes_0 (N0, 4), scores_0 (N0,), classes_0 (N0,), boxes_1, ...)``."""
    flat: list[torch.Tensor] = []
    for out in outputs:
        inst = out["instances"]
        for name in DETECTION_FIELDS:
            value = inst.get(name)
            flat.append(value.tensor if hasattr(value, "tensor") else value)
    return tuple(flat)


class TracingAdapter(nn.Module):
    """``adapter(*images) -> flatten_detections(model(inputs with those images))``.

    Args:
        model: a detector in eval mode (``list[dict] -> list[{"instances": Instances}]``).
        inputs: the model inputs whose ``"image"`` tensors (C, H, W) are replaced by the positional
            arguments; their other keys (``height``, ``width``, ...) are passed as they are.
    """

    def __init__(self, model: nn.Module, inputs: Sequence[dict]):
        super().__init__()
        self.model = model
        self.inputs = [{k: v for k, v in inp.items() if k != "image"} for inp in inputs]
        self.images = tuple(inp["image"] for inp in inputs)

    def forward(self, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(images) != len(self.inputs):
            raise ValueError(f"TracingAdapter: {len(images)} images for {len(self.inputs)} inputs")
        batch = [{**inp, "image": img} for inp, img in zip(self.inputs, images)]
        return flatten_detections(self.model(batch))


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
