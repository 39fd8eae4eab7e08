"""RetinaNet: dense one-stage detector with a focal-loss classification subnet."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from net_detr2.layers import ShapeSpec, batched_nms, cat, get_norm
from net_detr2.modeling.box_regression import Box2BoxTransform, _dense_box_regression_loss
from net_detr2.modeling.matcher import Matcher, matched_classes
from net_detr2.modeling.registry import META_ARCH_REGISTRY
from net_detr2.modeling.roi_heads.box_head import as_shape_spec
from net_detr2.structures import Boxes, ImageList, Instances

from .dense_detector import DenseDetector

__all__ = ["RetinaNet", "RetinaNetHead", "sigmoid_focal_loss"]


def sigmoid_focal_loss(
    inputs: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> torch.Tensor:
    """Focal loss (Lin et al., Eq. 5) on logits: -alpha_t (1 - p_t)^gamma log(p_t), elementwise.

    Args:
        inputs: logits, any shape; targets: 0/1 floats of the same shape.
        alpha: weight of positives (1 - alpha for negatives); < 0 disables the weighting.
    """
    p = torch.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if reduction != "none":
        raise ValueError(f"sigmoid_focal_loss: unknown reduction {reduction!r}")
    return loss


@META_ARCH_REGISTRY.register()
class RetinaNet(DenseDetector):
    """RetinaNet (Lin et al. 2017).

    Extension points: ``anchor_matcher`` (any object with `Matcher.match_anchors`'s signature, e.g. one
    that also reads the predictions), `classification_loss_weights` (a weight per anchor on the
    classification loss), `nms` (how one image's candidates are reduced to detections).

    Args:
        backbone, head, head_in_features, pixel_mean, pixel_std, input_format, vis_period: see `DenseDetector`.
        anchor_generator: e.g. DefaultAnchorGenerator with 9 anchors per location.
        box2box_transform: anchor <-> delta encoding.
        anchor_matcher: assigns anchors to ground truth through its ``match_anchors(anchors, gt_instances,
            pred_logits)``; a `Matcher` is the IoU rule (IoU >= 0.5 positive, < 0.4 negative by default).
        num_classes: K.
        focal_loss_alpha, focal_loss_gamma: focal loss parameters.
        smooth_l1_beta, box_reg_loss_type: box loss ("smooth_l1" or "giou").
        test_score_thresh, test_topk_candidates, test_nms_thresh, max_detections_per_image: inference.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        head: nn.Module,
        head_in_features: Sequence[str],
        anchor_generator: nn.Module,
        box2box_transform: Box2BoxTransform,
        anchor_matcher: Matcher,
        num_classes: int,
        focal_loss_alpha: float = 0.25,
        focal_loss_gamma: float = 2.0,
        smooth_l1_beta: float = 0.1,
        box_reg_loss_type: str = "smooth_l1",
        test_score_thresh: float = 0.05,
        test_topk_candidates: int = 1000,
        test_nms_thresh: float = 0.5,
        max_detections_per_image: int = 100,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        vis_period: int = 0,
        input_format: str = "BGR",
    ):
        super().__init__(
            backbone=backbone,
            head=head,
            head_in_features=head_in_features,
            pixel_mean=pixel_mean,
            pixel_std=pixel_std,
            input_format=input_format,
            vis_period=vis_period,
        )
        self.num_classes = num_classes
        self.anchor_generator = anchor_generator
        self.box2box_transform = box2box_transform
        self.anchor_matcher = anchor_matcher
        self.focal_loss_alpha = focal_loss_alpha
        self.focal_loss_gamma = focal_loss_gamma
        self.smooth_l1_beta = smooth_l1_beta
        if box_reg_loss_type not in ("smooth_l1", "giou"):
            raise ValueError(f"RetinaNet: box_reg_loss_type {box_reg_loss_type!r} not supported (smooth_l1, giou)")
        self.box_reg_loss_type = box_reg_loss_type
        self.test_score_thresh = test_score_thresh
        self.test_topk_candidates = test_topk_candidates
        self.test_nms_thresh = test_nms_thresh
        self.max_detections_per_image = max_detections_per_image
        # EMA of the number of foreground anchors per batch: a stabler loss normaliser than the
        # per-batch count (detectron2: init 100, momentum 0.9). Kept as a tensor, updated without .item().
        self.loss_normalizer: float | torch.Tensor = 100.0
        self.loss_normalizer_momentum = 0.9

    def forward_training(
        self, images: ImageList, features: list[torch.Tensor], predictions, gt_instances: list[Instances]
    ) -> dict[str, torch.Tensor]:
        pred_logits, pred_deltas = self._transpose_dense_predictions(predictions, [self.num_classes, 4])
        anchors = self.anchor_generator(features)
        gt_labels, gt_boxes = self.label_anchors(anchors, gt_instances, pred_logits)
        return self.losses(anchors, pred_logits, gt_labels, pred_deltas, gt_boxes)

    @torch.no_grad()
    def label_anchors(
        self,
        anchors: list[Boxes],
        gt_instances: list[Instances],
        pred_logits: list[torch.Tensor] | None = None,
        matcher: Matcher | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per image: class label per anchor [R] (K = background, -1 = ignore) and matched GT boxes [R, 4].

        Args:
            anchors: per level Boxes [Ri, 4].
            pred_logits: per level [N, Ri, K], for anchor matchers that read the predictions.
            matcher: the anchor matcher to use instead of ``anchor_matcher`` (e.g. to compare two rules).
        """
        matcher = self.anchor_matcher if matcher is None else matcher
        anchors = Boxes.cat(anchors)
        gt_labels, matched_boxes = [], []
        for i, inst in enumerate(gt_instances):
            image_logits = None if pred_logits is None else [x[i] for x in pred_logits]
            matched_idxs, match_labels = matcher.match_anchors(anchors, inst, image_logits)
            gt_labels.append(matched_classes(inst.gt_classes, matched_idxs, match_labels, self.num_classes))
            if len(inst) > 0:
                matched_boxes.append(inst.gt_boxes.tensor[matched_idxs])
            else:
                matched_boxes.append(torch.zeros_like(anchors.tensor))
        return gt_labels, matched_boxes

    def _update_loss_normalizer(self, num_pos: torch.Tensor) -> torch.Tensor:
        """EMA of max(num_pos, 1); a tensor, so no host sync in the training step."""
        m = self.loss_normalizer_momentum
        prev = self.loss_normalizer
        if isinstance(prev, torch.Tensor):
            prev = prev.to(num_pos.device)
        self.loss_normalizer = (m * prev + (1 - m) * num_pos.clamp(min=1).to(torch.float32)).detach()
        return self.loss_normalizer

    def losses(
        self,
        anchors: list[Boxes],
        pred_logits: list[torch.Tensor],
        gt_labels: list[torch.Tensor],
        pred_anchor_deltas: list[torch.Tensor],
        gt_boxes: list[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Focal loss over non-ignored anchors (weighted by `classification_loss_weights`) + box loss over
        positives, both / EMA of #positives.

        Args:
            pred_logits: per level [N, Ri, K]; pred_anchor_deltas: per level [N, Ri, 4].
            gt_labels, gt_boxes: per image [R], [R, 4] from `label_anchors`.
        """
        gt_labels = torch.stack(gt_labels)  # [N, R]
        valid = gt_labels >= 0
        pos = valid & (gt_labels != self.num_classes)
        normalizer = self._update_loss_normalizer(pos.sum())
        # one-hot over K+1 then drop the background column: background anchors get all-zero targets
        target = F.one_hot(gt_labels[valid], num_classes=self.num_classes + 1)[:, :-1]
        logits = cat(pred_logits, dim=1)[valid]
        focal = sigmoid_focal_loss(logits, target.to(logits.dtype), self.focal_loss_alpha, self.focal_loss_gamma)
        per_anchor = focal.sum(dim=1)
        weights = self.classification_loss_weights(per_anchor, gt_labels, anchors, pred_anchor_deltas, gt_boxes)
        loss_cls = focal.sum() if weights is None else (per_anchor * weights).sum()
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

    def classification_loss_weights(
        self,
        per_anchor_loss: torch.Tensor,
        gt_labels: torch.Tensor,
        anchors: list[Boxes],
        pred_anchor_deltas: list[torch.Tensor],
        gt_boxes: list[torch.Tensor],
    ) -> torch.Tensor | None:
        """Weight of each non-ignored anchor's classification loss; None (RetinaNet): all weigh 1.

        Args:
            per_anchor_loss: [V] focal loss of each anchor with ``gt_labels >= 0``, summed over classes, in
                ``gt_labels[gt_labels >= 0]`` order (image-major).
            gt_labels: [N, R] from `label_anchors` (K = background, -1 = ignored).
            anchors, pred_anchor_deltas, gt_boxes: as for `losses`.
        Returns:
            [V] weights (the loss is then ``sum(weights * per_anchor_loss)``), or None.
        """
        return None

    def forward_inference(self, images: ImageList, features: list[torch.Tensor], predictions) -> list[Instances]:
        pred_logits, pred_deltas = self._transpose_dense_predictions(predictions, [self.num_classes, 4])
        anchors = self.anchor_generator(features)
        results = []
        for i, image_size in enumerate(images.image_sizes):
            scores = [x[i].sigmoid() for x in pred_logits]
            deltas = [x[i] for x in pred_deltas]
            results.append(self.inference_single_image(anchors, scores, deltas, image_size))
        return results

    def inference_single_image(
        self,
        anchors: list[Boxes],
        box_cls: list[torch.Tensor],
        box_delta: list[torch.Tensor],
        image_size: tuple[int, int],
    ) -> Instances:
        """Per level top-k candidates above the score threshold, then per-class NMS and the best detections.

        Args:
            box_cls: per level [Ri, K] probabilities; box_delta: per level [Ri, 4].
        """
        pred = self.decode_multi_level_predictions(
            anchors, box_cls, box_delta, self.test_score_thresh, self.test_topk_candidates, image_size
        )
        return self.nms(pred)

    def nms(self, candidates: Instances) -> Instances:
        """One image's decoded candidates -> per-class NMS (IoU ``test_nms_thresh``), the best
        ``max_detections_per_image`` kept, by decreasing score."""
        keep = batched_nms(
            candidates.pred_boxes.tensor, candidates.scores, candidates.pred_classes, self.test_nms_thresh
        )
        return candidates[keep[: self.max_detections_per_image]]


class RetinaNetHead(nn.Module):
    """Two parallel conv towers (classification, box) shared over levels, then 3x3 output convs.

    Args:
        input_shape: ShapeSpec per input level (all with the same channels).
        num_classes: K; num_anchors: A per location.
        conv_dims: widths of the tower convs (4 x 256 in the paper).
        norm: "" / "BN" / "GN" ... after each tower conv.
        prior_prob: initial foreground probability of every output (sets the cls bias).
    """

    def __init__(
        self,
        *,
        input_shape: list[ShapeSpec],
        num_classes: int,
        num_anchors: int,
        conv_dims: Sequence[int],
        norm="",
        prior_prob: float = 0.01,
    ):
        super().__init__()
        input_shape = [as_shape_spec(s, "RetinaNetHead input_shape") for s in input_shape]
        channels = {s.channels for s in input_shape}
        if len(channels) != 1:
            raise ValueError(f"RetinaNetHead: every input level must have the same channels, got {sorted(channels)}")
        in_ch = channels.pop()
        cls_layers, box_layers = [], []
        for a, b in zip([in_ch] + list(conv_dims), conv_dims):
            cls_layers.append(nn.Conv2d(a, b, kernel_size=3, stride=1, padding=1))
            if norm:
                cls_layers.append(get_norm(norm, b))
            cls_layers.append(nn.ReLU())
            box_layers.append(nn.Conv2d(a, b, kernel_size=3, stride=1, padding=1))
            if norm:
                box_layers.append(get_norm(norm, b))
            box_layers.append(nn.ReLU())
        self.cls_subnet = nn.Sequential(*cls_layers)
        self.bbox_subnet = nn.Sequential(*box_layers)
        last = conv_dims[-1] if len(conv_dims) else in_ch
        self.cls_score = nn.Conv2d(last, num_anchors * num_classes, kernel_size=3, stride=1, padding=1)
        self.bbox_pred = nn.Conv2d(last, num_anchors * 4, kernel_size=3, stride=1, padding=1)
        for m in [self.cls_subnet, self.bbox_subnet, self.cls_score, self.bbox_pred]:
            for layer in m.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.normal_(layer.weight, mean=0, std=0.01)
                    nn.init.constant_(layer.bias, 0)
        # start with p(fg) = prior_prob everywhere so the many negatives do not swamp the first steps
        nn.init.constant_(self.cls_score.bias, -math.log((1 - prior_prob) / prior_prob))
        self.num_classes = num_classes
        self.num_anchors = num_anchors

    def forward(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """features: per level [N, C, Hi, Wi] -> (logits [N, A*K, Hi, Wi], deltas [N, A*4, Hi, Wi]) per level."""
        logits = [self.cls_score(self.cls_subnet(x)) for x in features]
        deltas = [self.bbox_pred(self.bbox_subnet(x)) for x in features]
        return logits, deltas
