"""`DCRetinaNet`: RetinaNet with the three components of the DC-RetinaNet paper, each switchable.

* ``iac_assignment``: IoU-classification-aware anchor assignment (Eq. 4-5),
* ``dc_loss``: the dynamic-coefficient weighting of the positives' focal loss (Eq. 1-3),
* ``cl_nms``: Classification-Localization balanced NMS at test time (Eq. 6-7).

With all three off it is exactly `RetinaNet`.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from net_detr2.layers import cat
from net_detr2.modeling.box_regression import _dense_box_regression_loss
from net_detr2.modeling.meta_arch.retinanet import RetinaNet, sigmoid_focal_loss
from net_detr2.modeling.registry import META_ARCH_REGISTRY
from net_detr2.structures import Boxes, ImageList, Instances, pairwise_iou

from .assignment import iou_classification_aware_score, promote_by_score
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
        **kwargs: the `RetinaNet` arguments.
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
        self.iac_assignment = iac_assignment
        self.iac_alpha = iac_alpha
        self.iac_score_threshold = iac_score_threshold
        self.dc_loss = dc_loss
        self.dc_eps = dc_eps
        self.cl_nms = cl_nms
        self.cl_nms_beta = cl_nms_beta

    def forward_training(
        self, images: ImageList, features: list[torch.Tensor], predictions, gt_instances: list[Instances]
    ) -> dict[str, torch.Tensor]:
        pred_logits, pred_deltas = self._transpose_dense_predictions(predictions, [self.num_classes, 4])
        anchors = self.anchor_generator(features)
        if self.iac_assignment:
            gt_labels, gt_boxes = self.label_anchors_iac(anchors, gt_instances, pred_logits)
        else:
            gt_labels, gt_boxes = self.label_anchors(anchors, gt_instances)
        return self.losses(anchors, pred_logits, gt_labels, pred_deltas, gt_boxes)

    @torch.no_grad()
    def label_anchors_iac(
        self, anchors: list[Boxes], gt_instances: list[Instances], pred_logits: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """`label_anchors` with the IoU rule extended by Eq. 5 (same outputs)."""
        anchors = Boxes.cat(anchors)
        logits = cat(pred_logits, dim=1)  # [N, R, K]
        gt_labels, matched_boxes = [], []
        for inst, image_logits in zip(gt_instances, logits):
            matched_idxs, anchor_labels = self.anchor_matcher(pairwise_iou(inst.gt_boxes, anchors))
            if len(inst) > 0:
                gt_class_prob = image_logits[:, inst.gt_classes].T.sigmoid()  # [G, R]
                scores = iou_classification_aware_score(inst.gt_boxes, anchors, gt_class_prob, self.iac_alpha)
                matched_idxs, anchor_labels = promote_by_score(
                    matched_idxs, anchor_labels, scores, self.iac_score_threshold
                )
            labels, boxes = self._anchor_targets(inst, matched_idxs, anchor_labels, anchors)
            gt_labels.append(labels)
            matched_boxes.append(boxes)
        return gt_labels, matched_boxes

    def losses(
        self,
        anchors: list[Boxes],
        pred_logits: list[torch.Tensor],
        gt_labels: list[torch.Tensor],
        pred_anchor_deltas: list[torch.Tensor],
        gt_boxes: list[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        if not self.dc_loss:
            return super().losses(anchors, pred_logits, gt_labels, pred_anchor_deltas, gt_boxes)
        gt_labels_t = torch.stack(gt_labels)  # [N, R]
        valid = gt_labels_t >= 0
        pos = valid & (gt_labels_t != self.num_classes)
        normalizer = self._update_loss_normalizer(pos.sum())
        valid_labels = gt_labels_t[valid]
        target = F.one_hot(valid_labels, num_classes=self.num_classes + 1)[:, :-1]
        logits = cat(pred_logits, dim=1)[valid]
        per_anchor = sigmoid_focal_loss(
            logits, target.to(logits.dtype), self.focal_loss_alpha, self.focal_loss_gamma
        ).sum(dim=1)  # [V]
        positive = valid_labels != self.num_classes  # the positives of ``pos``, in the same order

        # lambda' from each positive's decoded (detached) prediction and its ground truth
        anchor_boxes = Boxes.cat(anchors).tensor.expand(len(gt_labels), -1, -1)
        deltas = cat(pred_anchor_deltas, dim=1).detach()
        pred_boxes = self.box2box_transform.apply_deltas(deltas[pos], anchor_boxes[pos])
        coefficient = dynamic_coefficient(pred_boxes, torch.stack(gt_boxes)[pos], self.dc_eps)
        weight = torch.ones_like(per_anchor)
        weight[positive] = normalized_coefficient(coefficient, per_anchor[positive])
        loss_cls = (per_anchor * weight).sum()

        loss_box = _dense_box_regression_loss(
            anchors,
            self.box2box_transform,
            pred_anchor_deltas,
            gt_boxes,
            pos,
            self.box_reg_loss_type,
            self.smooth_l1_beta,
        )
        return {"loss_cls": loss_cls / normalizer, "loss_box_reg": loss_box / normalizer}

    def inference_single_image(
        self,
        anchors: list[Boxes],
        box_cls: list[torch.Tensor],
        box_delta: list[torch.Tensor],
        image_size: tuple[int, int],
    ) -> Instances:
        if not self.cl_nms:
            return super().inference_single_image(anchors, box_cls, box_delta, image_size)
        pred = self._decode_multi_level_predictions(
            anchors, box_cls, box_delta, self.test_score_thresh, self.test_topk_candidates, image_size
        )
        keep, scores = cl_balanced_nms(
            pred.pred_boxes.tensor, pred.scores, pred.pred_classes, self.test_nms_thresh, beta=self.cl_nms_beta
        )
        result = pred[keep[: self.max_detections_per_image]]
        result.scores = scores[: self.max_detections_per_image]
        return result
