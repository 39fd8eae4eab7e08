"""Deployment: a detector's inference graph as TorchScript and ONNX, with a fixed input/output contract
(see `net_detr2.export.exporters`)."""

from __future__ import annotations

from .exporters import (
    ExportContract,
    export_onnx,
    export_torchscript,
    match_detections,
    run_onnx,
)
from .flatten import DETECTION_FIELDS, TracingAdapter, flatten_detections

__all__ = [k for k in globals().keys() if not k.startswith("_")]
