"""Export a detector's inference graph to TorchScript (``torch.jit.trace``) and ONNX, and check it.

The contract of an exported model (also written to ``export.json`` by ``tools/export_model.py``):

* input ``image``: float32 ``[3, H, W]``, one picture of exactly the export size ``H x W``, channels in the
  model's ``input_format`` (``BGR`` for detectron2-style models), values 0..255 and *not* normalised: the graph
  subtracts ``pixel_mean``, divides by ``pixel_std`` and pads to the backbone's size divisibility itself. Resize
  (and pad) your picture to ``H x W`` as the config's test mapper would;
* outputs ``boxes`` float32 ``[N, 4]`` (x1, y1, x2, y2 in pixels of the input tensor), ``scores`` float32 ``[N]``
  and ``classes`` int64 ``[N]`` (contiguous class ids: ``class_names[i]``), ``N`` up to the model's detections per
  image, in the order the eager model returns them. Scale the boxes back to your original picture yourself.

The graph is specialised to ``H x W``: sizes (anchor grids, padding, clipping) are constants of the trace, while
everything that depends on the picture's content (score thresholds, top-k, NMS) stays dynamic. A different size
needs another export. ``torch.export`` is not offered: the inference code branches on data (kept boxes, NMS
results), which ``torch.export`` refuses without rewriting those parts with its guard-free primitives.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .flatten import TracingAdapter

__all__ = ["ExportContract", "export_torchscript", "export_onnx", "run_onnx", "match_detections"]

logger = logging.getLogger(__name__)

INPUT_NAME = "image"
OUTPUT_NAMES = ("boxes", "scores", "classes")


@dataclass
class ExportContract:
    """What an exported file takes and returns (serialised next to it as JSON)."""

    height: int
    width: int
    input_format: str
    class_names: list[str] = field(default_factory=list)
    input: str = (
        "image: float32 [3, H, W], channels in input_format, values 0..255, not normalised; resized to H x W by the "
        "caller as the config's test mapper does"
    )
    outputs: str = (
        "boxes: float32 [N, 4] x1 y1 x2 y2 in pixels of the input; scores: float32 [N]; classes: int64 [N] "
        "(indices into class_names)"
    )
    files: dict[str, str] = field(default_factory=dict)

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f, indent=2)


def _single_image_adapter(model: nn.Module, image: torch.Tensor) -> TracingAdapter:
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"export: the example image must be [3, H, W], got {tuple(image.shape)}")
    if model.training:
        raise ValueError("export: put the model in eval mode first (model.eval())")
    return TracingAdapter(model, [{"image": image.float()}])


def export_torchscript(model: nn.Module, image: torch.Tensor, path: str) -> torch.jit.ScriptModule:
    """Trace ``model`` on ``image`` (float32 [3, H, W]) and save the TorchScript module to ``path``.

    The saved module maps an image of the same size to ``(boxes, scores, classes)``; load it with
    ``torch.jit.load(path)`` (no net_detr2 needed). Returns the traced module.
    """
    adapter = _single_image_adapter(model, image)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # shape constants: intended
        warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit is deprecated in favour of export
        traced = torch.jit.trace(adapter, (image.float(),), check_trace=False)
    traced.save(path)
    logger.info(f"Saved TorchScript to {path}")
    return traced


def export_onnx(model: nn.Module, image: torch.Tensor, path: str, opset: int = 17) -> str:
    """Export ``model`` traced on ``image`` (float32 [3, H, W]) to ONNX at ``path`` (inputs/outputs named as in
    the module docstring); NMS and RoIAlign become ONNX ``NonMaxSuppression`` / ``RoiAlign``."""
    adapter = _single_image_adapter(model, image)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript-based exporter: chosen
        torch.onnx.export(
            adapter,
            (image.float(),),
            path,
            dynamo=False,  # the dynamo exporter goes through torch.export (see the module docstring)
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: {0: "N"} for name in OUTPUT_NAMES},
        )
    logger.info(f"Saved ONNX to {path}")
    return path


def run_onnx(path: str, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Run an exported ONNX file with onnxruntime (CPU) on one image; returns ``(boxes, scores, classes)``."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ImportError("running an ONNX export needs onnxruntime (pip install onnxruntime)") from e
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ONNX file not found: {path}")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    outputs = session.run(list(OUTPUT_NAMES), {INPUT_NAME: image.float().numpy()})
    return tuple(torch.from_numpy(o) for o in outputs)


def match_detections(
    reference: tuple[torch.Tensor, ...],
    other: tuple[torch.Tensor, ...],
    iou_threshold: float = 0.99,
    score_tolerance: float = 1e-4,
) -> dict[str, Any]:
    """Compare two ``(boxes, scores, classes)`` results: each reference detection must have one in ``other``
    of the same class with IoU >= ``iou_threshold`` and a score within ``score_tolerance``.

    Returns ``{"reference": n, "other": m, "matched": k, "max_box_diff": px, "max_score_diff": s}``; the
    two agree when ``matched == reference == other``.
    """
    from net_detr2.structures import Boxes, pairwise_iou

    rb, rs, rc = reference
    ob, os_, oc = other
    out: dict[str, Any] = {"reference": len(rs), "other": len(os_), "matched": 0}
    if len(rs) == 0 or len(os_) == 0:
        out.update(max_box_diff=0.0, max_score_diff=0.0)
        return out
    iou = pairwise_iou(Boxes(rb.float()), Boxes(ob.float()))
    ok = (iou >= iou_threshold) & (rc[:, None] == oc[None]) & ((rs[:, None] - os_[None]).abs() <= score_tolerance)
    out["matched"] = int(ok.any(dim=1).sum())
    if len(rs) == len(os_):
        out["max_box_diff"] = float((rb - ob).abs().max())
        out["max_score_diff"] = float((rs - os_).abs().max())
    return out
