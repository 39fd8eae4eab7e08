"""Rescale detections from the network's input frame to the caller's requested output frame."""

from __future__ import annotations

from net_detr2.structures import Instances

__all__ = ["detector_postprocess"]


def detector_postprocess(results: Instances, output_height: int, output_width: int) -> Instances:
    """Scale boxes from ``results.image_size`` to (output_height, output_width), clip, drop empty ones.

    Works on ``pred_boxes`` (detections) or ``proposal_boxes`` (proposals). The input is not copied:
    its box tensor is scaled in place.

    Returns:
        a new Instances of image_size (output_height, output_width).
    """
    scale_x = output_width / results.image_size[1]
    scale_y = output_height / results.image_size[0]
    results = Instances((output_height, output_width), **results.get_fields())
    if results.has("pred_boxes"):
        boxes = results.pred_boxes
    elif results.has("proposal_boxes"):
        boxes = results.proposal_boxes
    else:
        boxes = None
    if boxes is not None:
        boxes.scale(scale_x, scale_y)
        boxes.clip(results.image_size)
        results = results[boxes.nonempty()]
    return results
