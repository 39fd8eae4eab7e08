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
from net_detr2.utils.events import get_event_storage, has_event_storage

from .assignment import IoUClassificationAwareMatcher
from .cl_balanced_nms import cl_balanced_nms
from .dynamic_coefficient import OFFSET_UNITS, dynamic_coefficient, normalized_coefficient
from .probes import READINGS, assignment_statistics, coefficient_statistics

__all__ = ["DCRetinaNet"]


def _matcher_setting(name: str, doc: str) -> property:
    """A setting of the IAC matcher, read and written there (the matcher exists whether IAC is on or off)."""
    return property(
        lambda self: getattr(self.iac_matcher, name),
        lambda self, value: setattr(self.iac_matcher, name, value),
        doc=doc,
    )


@META_ARCH_REGISTRY.register()
class DCRetinaNet(RetinaNet):
    """RetinaNet + IoU-classification-aware assignment + DC loss + CL-balanced NMS.

    Args:
        iac_assignment: promote anchors with ``alpha * p^ + (1 - alpha) * overlap >= iac_score_threshold``.
        iac_alpha, iac_score_threshold: alpha and the score threshold of Eq. 4-5.
        iac_case_order, iac_overlap, iac_warmup_iters: the reading of Eq. 4-5 (`IoUClassificationAwareMatcher`).
        dc_loss: weight the positives' focal loss by the normalised dynamic coefficient lambda'.
        dc_eps: epsilon of Eq. 1; dc_offset_units: units of its centre offset (`dynamic_coefficient`).
        dc_warmup_iters: lambda' is blended in linearly over these first training iterations
            (``1 + r * (lambda' - 1)``, r from 0 to 1; the positives' total loss stays that of Eq. 2).
        cl_nms: use CL-balanced NMS instead of greedy NMS at test time.
        cl_nms_beta: weight beta of the localisation term of Eq. 7.
        log_statistics: every this many training iterations (0: never) put into the event storage what every
            reading of Eq. 4-5 would promote with the current predictions, and the statistics of lambda and
            lambda' (`probes`), whichever switches are on; it changes no number of the training.
        **kwargs: the `RetinaNet` arguments (``anchor_matcher``: the IoU rule).
    """

    def __init__(
        self,
        *,
        iac_assignment: bool = True,
        iac_alpha: float = 0.5,
        iac_score_threshold: float = 0.6,
        iac_case_order: str = "negative_first",
        iac_overlap: str = "min_area",
        iac_warmup_iters: int = 0,
        dc_loss: bool = True,
        dc_eps: float = 1e-6,
        dc_offset_units: str = "gt_size",
        dc_warmup_iters: int = 0,
        cl_nms: bool = True,
        cl_nms_beta: float = 1.0,
        log_statistics: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.iac_matcher = IoUClassificationAwareMatcher(
            self.anchor_matcher, iac_alpha, iac_score_threshold, iac_case_order, iac_overlap, iac_warmup_iters
        )
        self.iac_assignment = iac_assignment
        if dc_offset_units not in OFFSET_UNITS:
            raise ValueError(f"DCRetinaNet: dc_offset_units must be one of {OFFSET_UNITS}, got {dc_offset_units!r}")
        if dc_warmup_iters < 0:
            raise ValueError(f"DCRetinaNet: dc_warmup_iters must be >= 0, got {dc_warmup_iters}")
        self.dc_loss = dc_loss
        self.dc_eps = dc_eps
        self.dc_offset_units = dc_offset_units
        self.dc_warmup_iters = dc_warmup_iters
        self.cl_nms = cl_nms
        self.cl_nms_beta = cl_nms_beta
        if log_statistics < 0:
            raise ValueError(f"DCRetinaNet: log_statistics must be >= 0 (a period in iterations), got {log_statistics}")
        self.log_statistics = log_statistics

    # The assignment settings live in the matcher; these read and write them there.
    @property
    def iac_assignment(self) -> bool:
        return self.anchor_matcher is self.iac_matcher

    @iac_assignment.setter
    def iac_assignment(self, on: bool) -> None:
        self.anchor_matcher = self.iac_matcher if on else self.iac_matcher.iou_matcher

    iac_alpha = _matcher_setting("alpha", "alpha of Eq. 4")
    iac_score_threshold = _matcher_setting("score_threshold", "score_threshold of Eq. 5")
    iac_case_order = _matcher_setting("case_order", "which anchors Eq. 5 may promote")
    iac_overlap = _matcher_setting("overlap", "the geometric term of Eq. 4")
    iac_warmup_iters = _matcher_setting("warmup_iters", "no promotion before this iteration")

    def _logging(self) -> bool:
        """Whether this training iteration records the statistics."""
        if not (self.log_statistics and self.training and has_event_storage()):
            return False
        return get_event_storage().iter % self.log_statistics == 0

    def label_anchors_iac(
        self, anchors: list[Boxes], gt_instances: list[Instances], pred_logits: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """`label_anchors` with the IoU rule extended by Eq. 5 (same outputs), whatever ``iac_assignment`` says."""
        return self.label_anchors(anchors, gt_instances, pred_logits, matcher=self.iac_matcher)

    @torch.no_grad()
    def label_anchors(
        self,
        anchors: list[Boxes],
        gt_instances: list[Instances],
        pred_logits: list[torch.Tensor] | None = None,
        matcher=None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """`RetinaNet.label_anchors`; with ``log_statistics`` also records what each reading of Eq. 4-5 promotes."""
        if pred_logits is not None and self._logging():
            self._log_assignment(Boxes.cat(anchors), gt_instances, pred_logits)
        return super().label_anchors(anchors, gt_instances, pred_logits, matcher)

    def _log_assignment(self, anchors: Boxes, gt_instances: list[Instances], pred_logits: list[torch.Tensor]) -> None:
        iou_matcher = self.iac_matcher.iou_matcher
        per_image = torch.stack(
            [
                assignment_statistics(
                    anchors,
                    inst,
                    [x[i] for x in pred_logits],
                    iou_matcher,
                    self.iac_alpha,
                    self.iac_score_threshold,
                )
                for i, inst in enumerate(gt_instances)
            ]
        )  # [images, readings, columns]
        sums = torch.cat([per_image[:, :, :-1].sum(dim=0), per_image[:, :, -1:].amax(dim=0)], dim=1)
        num_gt = max(sum(len(inst) for inst in gt_instances), 1)
        table = sums.tolist()  # one host copy
        storage = get_event_storage()
        for (case_order, overlap), (promoted, size_ratio, smaller, larger, p_hat, iou, most) in zip(READINGS, table):
            prefix = f"iac.{case_order}.{overlap}/"
            storage.put_scalar(prefix + "promoted_per_gt", promoted / num_gt)
            storage.put_scalar(prefix + "most_for_one_gt", most)
            if promoted > 0:  # means over the promoted anchors
                storage.put_scalars(
                    **{
                        prefix + "size_ratio": size_ratio / promoted,
                        prefix + "smaller_half": smaller / promoted,
                        prefix + "larger_double": larger / promoted,
                        prefix + "p_hat": p_hat / promoted,
                        prefix + "iou": iou / promoted,
                    }
                )

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
        logging = self._logging()
        if not (self.dc_loss or logging):
            return None
        valid = gt_labels >= 0
        pos = valid & (gt_labels != self.num_classes)
        positive = gt_labels[valid] != self.num_classes  # the positives of ``pos``, in per_anchor_loss order
        anchor_boxes = Boxes.cat(anchors).tensor.expand(len(gt_labels), -1, -1)
        deltas = cat(pred_anchor_deltas, dim=1).detach()
        pred_boxes = self.box2box_transform.apply_deltas(deltas[pos], anchor_boxes[pos])
        coefficient = dynamic_coefficient(pred_boxes, torch.stack(gt_boxes)[pos], self.dc_eps, self.dc_offset_units)
        normalized = normalized_coefficient(coefficient, per_anchor_loss[positive])
        ramp = self._dc_ramp()
        if ramp < 1.0:
            normalized = 1.0 + ramp * (normalized - 1.0)
        if logging:
            stats = coefficient_statistics(coefficient, normalized)
            if stats:
                values = torch.stack(list(stats.values())).tolist()
                get_event_storage().put_scalars(**{f"dc/{k}": v for k, v in zip(stats, values)})
        if not self.dc_loss:
            return None
        weight = torch.ones_like(per_anchor_loss)
        weight[positive] = normalized
        return weight

    def _dc_ramp(self) -> float:
        """Share of lambda' in the weight: 1 after ``dc_warmup_iters`` (and outside training)."""
        if self.dc_warmup_iters == 0 or not self.training:
            return 1.0
        if not has_event_storage():
            raise RuntimeError(
                f"DCRetinaNet: dc_warmup_iters={self.dc_warmup_iters} needs the training iteration, read from the "
                "event storage; train inside `with EventStorage(start_iter):`"
            )
        return min(1.0, get_event_storage().iter / self.dc_warmup_iters)

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
