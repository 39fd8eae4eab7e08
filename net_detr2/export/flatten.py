"""A detector seen as a function of tensors: what tracing (TorchScript, ONNX, fvcore's counters) needs.

A detector takes ``list[dict]`` and returns ``list[{"instances": Instances}]``. `TracingAdapter` holds the
non-tensor parts of the inputs fixed, takes the images as positional tensors and returns the detections
flattened into a tuple of tensors (`flatten_detections`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["DETECTION_FIELDS", "flatten_detections", "TracingAdapter"]

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
        # the adapter's own flag follows the model's: exporters that switch modes and restore them (ONNX)
        # then restore the model's, not a fresh module's default (training)
        self.training = model.training
        self.inputs = [{k: v for k, v in inp.items() if k != "image"} for inp in inputs]
        self.images = tuple(inp["image"] for inp in inputs)

    def forward(self, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(images) != len(self.inputs):
            raise ValueError(f"TracingAdapter: {len(images)} images for {len(self.inputs)} inputs")
        batch = [{**inp, "image": img} for inp, img in zip(self.inputs, images)]
        return flatten_detections(self.model(batch))
