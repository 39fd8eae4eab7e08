"""`DCRetinaNet`: RetinaNet with the three components of the DC-RetinaNet paper, each switchable.

* ``iac_assignment``: IoU-classification-aware anchor assignment (Eq. 4-5): the model's anchor matcher
  is an `IoUClassificationAwareMatcher` around the IoU one,
* ``dc_loss``: the dynamic-coefficient weighting of the positives' focal loss (Eq. 1-3), through
  RetinaNet's `classification_loss_weights`,
* ``cl_nms``: Classification-Localization balanced NMS at test time (Eq. 6-7).

With all three off it is exactly `RetinaNet`. The first two need no subclass: a `RetinaNet` given
``anchor_matcher=IoUClassificationAwareMatcher(...)`` assigns anchors the same way.
"""

from __future__ import annotations

import torch

from net_detr2.layers import cat
from net_detr2.modeling.meta_arch.retinanet import RetinaNet
from net_detr2.modeling.registry import META_ARCH_REGISTRY
from net_detr2.structures import Boxes, Instances

from .assignment import IoUClassificationAwareMatcher
from .cl_balanced_nms import cl_balanced_nms
from .dynamic_coefficient import dynamic_coefficient, normalized_coefficient

__all__ = ["DCRetinaNet"]


@META_ARCH_REGISTRY.register()
class DCRetinaNet(RetinaNet):
    """RetinaNet + IoU-classification-aware assignment + DC loss + CL-balanced NMS.

    Args:
        iac_assignment: promote anchors with ``alpha * p^ + (1 - alpha) * inter / min_area >= iac_score_threshold``.
        iac_alpha, iac_score_threshold: alpha and the score threshold of Eq. 4-5.
        dc_loss: weight the positives' focal loss by the normalised dynamic coefficient lambda'.
        dc_eps: epsilon of Eq. 1.
        cl_nms: use CL-balanced NMS instead of greedy NMS at test time.
        cl_nms_beta: weight beta of the localisation term of Eq. 7.
        **kwargs: the `RetinaNet` arguments (``anchor_matcher``: the IoU rule).
    """

    def __init__(
        self,
        *,
        iac_assignment: bool = True,
        iac_alpha: float = 0.5,
        iac_score_threshold: float = 0.6,
        dc_loss: bool = True,
        dc_eps: float = 1e-6,
        cl_nms: bool = True,
        cl_nms_beta: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.iac_matcher = IoUClassificationAwareMatcher(self.anchor_matcher, iac_alpha, iac_score_threshold)
        self.iac_assignment = iac_assignment
        self.dc_loss = dc_loss
        self.dc_eps = dc_eps
        self.cl_nms = cl_nms
        self.cl_nms_beta = cl_nms_beta

    # The assignment settings live in the matcher; these read and write them there.
    @property
    def iac_assignment(self) -> bool:
        return self.anchor_matcher is self.iac_matcher

    @iac_assignment.setter
    def iac_assignment(self, on: bool) -> None:
        self.anchor_matcher = self.iac_matcher if on else self.iac_matcher.iou_matcher

    @property
    def iac_alpha(self) -> float:
        return self.iac_matcher.alpha

    @iac_alpha.setter
    def iac_alpha(self, alpha: float) -> None:
        self.iac_matcher.alpha = alpha

    @property
    def iac_score_threshold(self) -> float:
        return self.iac_matcher.score_threshold

    @iac_score_threshold.setter
    def iac_score_threshold(self, threshold: float) -> None:
        self.iac_matcher.score_threshold = threshold

    def label_anchors_iac(
        self, anchors: list[Boxes], gt_instances: list[Instances], pred_logits: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """`label_anchors` with the IoU rule extended by Eq. 5 (same outputs), whatever ``iac_assignment`` says."""
        return self.label_anchors(anchors, gt_instances, pred_logits, matcher=self.iac_matcher)

    def classification_loss_weights(
        self,
        per_anchor_loss: torch.Tensor,
        gt_labels: torch.Tensor,
        anchors: list[Boxes],
        pred_anchor_deltas: list[torch.Tensor],
        gt_boxes: list[torch.Tensor],
    ) -> torch.Tensor | None:
        """With ``dc_loss``: lambda' of each positive from its decoded (detached) prediction and its ground
        truth; 1 for the negatives."""
        if not self.dc_loss:
            return None
        valid = gt_labels >= 0
        pos = valid & (gt_labels != self.num_classes)
        positive = gt_labels[valid] != self.num_classes  # the positives of ``pos``, in per_anchor_loss order
        anchor_boxes = Boxes.cat(anchors).tensor.expand(len(gt_labels), -1, -1)
        deltas = cat(pred_anchor_deltas, dim=1).detach()
        pred_boxes = self.box2box_transform.apply_deltas(deltas[pos], anchor_boxes[pos])
        coefficient = dynamic_coefficient(pred_boxes, torch.stack(gt_boxes)[pos], self.dc_eps)
        weight = torch.ones_like(per_anchor_loss)
        weight[positive] = normalized_coefficient(coefficient, per_anchor_loss[positive])
        return weight

    def nms(self, candidates: Instances) -> Instances:
        """With ``cl_nms``: CL-balanced NMS, each kept box reported with its cluster's score."""
        if not self.cl_nms:
            return super().nms(candidates)
        keep, scores = cl_balanced_nms(
            candidates.pred_boxes.tensor,
            candidates.scores,
            candidates.pred_classes,
            self.test_nms_thresh,
            beta=self.cl_nms_beta,
        )
        result = candidates[keep[: self.max_detections_per_image]]
        result.scores = scores[: self.max_detections_per_image]
        return result
