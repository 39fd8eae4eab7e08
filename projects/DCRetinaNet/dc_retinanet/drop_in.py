"""CL-balanced NMS as post-processing of already built detectors (the paper applies it to other detectors).

* R-CNN family: the box predictor's ``test_nms`` hook (``FastRCNNOutputLayers(test_nms=...)``), set in a
  config (``model.roi_heads.box_predictor.test_nms = L(CLBalancedNMS)(beta=1.0)``) or on a built model
  with :func:`use_cl_nms`.
* RetinaNet: `DCRetinaNet` with ``cl_nms=True`` only (``use_dc_retinanet(model, iac_assignment=False,
  dc_loss=False, cl_nms=True)``): the same weights, the same keys.
"""

from __future__ import annotations

from torch import nn

from .cl_balanced_nms import CLBalancedNMS
from .meta_arch import DCRetinaNet

__all__ = ["use_cl_nms"]


def use_cl_nms(model: nn.Module, beta: float = 1.0) -> nn.Module:
    """Switch a built detector's test-time NMS to CL-balanced NMS, in place (weights untouched).

    Args:
        model: a `GeneralizedRCNN`-style model (every module with a ``test_nms`` attribute, i.e. each
            `FastRCNNOutputLayers`, cascade stages included) or a `DCRetinaNet`.
        beta: weight of the localisation term.
    Returns:
        the same model.
    Raises:
        TypeError: when the model has no NMS this function knows how to replace (e.g. a plain
            `RetinaNet`: build it as `DCRetinaNet` with only ``cl_nms`` on instead).
    """
    if isinstance(model, DCRetinaNet):
        model.cl_nms, model.cl_nms_beta = True, beta
        return model
    predictors = [m for m in model.modules() if hasattr(m, "test_nms")]
    if not predictors:
        raise TypeError(
            f"use_cl_nms: {type(model).__name__} has no module with a `test_nms` hook (FastRCNNOutputLayers) and "
            "is not a DCRetinaNet; for RetinaNet build DCRetinaNet(iac_assignment=False, dc_loss=False, cl_nms=True)"
        )
    for predictor in predictors:
        predictor.test_nms = CLBalancedNMS(beta)
    return model
