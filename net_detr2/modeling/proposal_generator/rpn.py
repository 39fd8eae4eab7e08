"""Region Proposal Network (Faster R-CNN): objectness + box deltas per anchor on each FPN level."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from fvcore.common.registry import Registry
from torch import nn
from torch.nn import functional as F

from net_detr2.layers import Conv2d, cat
from net_detr2.modeling.box_regression import Box2BoxTransform, _dense_box_regression_loss
from net_detr2.modeling.matcher import Matcher
from net_detr2.modeling.registry import PROPOSAL_GENERATOR_REGISTRY
from net_detr2.modeling.sampling import subsample_labels
from net_detr2.structures import Boxes, ImageList, Instances, pairwise_iou

from .proposal_utils import find_top_rpn_proposals

__all__ = ["RPN_HEAD_REGISTRY", "StandardRPNHead", "RPN"]

RPN_HEAD_REGISTRY = Registry("RPN_HEAD")
RPN_HEAD_REGISTRY.__doc__ = "RPN heads: per level features -> objectness logits and anchor deltas."


@RPN_HEAD_REGISTRY.register()
class StandardRPNHead(nn.Module):
    """Shared 3x3 conv(s) + ReLU, then sibling 1x1 convs for objectness (A ch) and deltas (A*box_dim ch).

    Args:
        in_channels: channels of every input level (they must all match).
        num_anchors: anchors per location A.
        box_dim: numbers per box delta (4).
        conv_dims: widths of the hidden 3x3 convs; ``(-1,)`` = one conv of ``in_channels``.
    """

    def __init__(self, *, in_channels: int, num_anchors: int, box_dim: int = 4, conv_dims: Sequence[int] = (-1,)):
        super().__init__()
        width = in_channels
        if len(conv_dims) == 1:
            width = in_channels if conv_dims[0] == -1 else conv_dims[0]
            self.conv = Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, activation=nn.ReLU())
        else:
            self.conv = nn.Sequential()
            for k, d in enumerate(conv_dims):
                d = in_channels if d == -1 else d
                if d <= 0:
                    raise ValueError(f"StandardRPNHead: conv_dims must be positive or -1, got {list(conv_dims)}")
                self.conv.add_module(f"conv{k}", Conv2d(width, d, 3, stride=1, padding=1, activation=nn.ReLU()))
                width = d
        self.objectness_logits = nn.Conv2d(width, num_anchors, kernel_size=1)
        self.anchor_deltas = nn.Conv2d(width, num_anchors * box_dim, kernel_size=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """features: per level [N, C, Hi, Wi] -> (logits per level [N, A, Hi, Wi], deltas [N, A*box_dim, Hi, Wi])."""
        logits, deltas = [], []
        for x in features:
            t = self.conv(x)
            logits.append(self.objectness_logits(t))
            deltas.append(self.anchor_deltas(t))
        return logits, deltas


@PROPOSAL_GENERATOR_REGISTRY.register()
class RPN(nn.Module):
    """Region Proposal Network.

    Training: labels anchors by IoU with the ground truth, samples ``batch_size_per_image`` of them
    and returns the objectness (BCE) and box losses, both normalised by batch_size_per_image x images.
    Both modes: decodes the proposals (no gradient) and selects the top ones per image.

    Args:
        in_features: names of the feature maps to use (e.g. p2..p6).
        head: e.g. StandardRPNHead.
        anchor_generator: e.g. DefaultAnchorGenerator.
        anchor_matcher: Matcher labelling anchors 1/0/-1.
        box2box_transform: anchor <-> delta encoding.
        batch_size_per_image, positive_fraction: anchor sampling for the losses.
        pre_nms_topk, post_nms_topk: (train, test) numbers of proposals per level before NMS / per image after.
        nms_thresh: NMS IoU threshold.
        min_box_size: proposals with a side <= this are dropped.
        anchor_boundary_thresh: anchors sticking out of the image by more than this are ignored in
            training (negative = keep all).
        loss_weight: float for both losses, or dict {"loss_rpn_cls": w, "loss_rpn_loc": w}.
        box_reg_loss_type: "smooth_l1" or "giou"; smooth_l1_beta: its beta.
    """

    def __init__(
        self,
        *,
        in_features: list[str],
        head: nn.Module,
        anchor_generator: nn.Module,
        anchor_matcher: Matcher,
        box2box_transform: Box2BoxTransform,
        batch_size_per_image: int,
        positive_fraction: float,
        pre_nms_topk: tuple[int, int],
        post_nms_topk: tuple[int, int],
        nms_thresh: float = 0.7,
        min_box_size: float = 0.0,
        anchor_boundary_thresh: float = -1.0,
        loss_weight: float | dict = 1.0,
        box_reg_loss_type: str = "smooth_l1",
        smooth_l1_beta: float = 0.0,
    ):
        super().__init__()
        self.in_features = list(in_features)
        self.rpn_head = head
        self.anchor_generator = anchor_generator
        self.anchor_matcher = anchor_matcher
        self.box2box_transform = box2box_transform
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        # index 0 = training, 1 = test (bool self.training indexes them)
        self.pre_nms_topk = {True: pre_nms_topk[0], False: pre_nms_topk[1]}
        self.post_nms_topk = {True: post_nms_topk[0], False: post_nms_topk[1]}
        self.nms_thresh = nms_thresh
        self.min_box_size = float(min_box_size)
        self.anchor_boundary_thresh = anchor_boundary_thresh
        if isinstance(loss_weight, (int, float)):
            loss_weight = {"loss_rpn_cls": loss_weight, "loss_rpn_loc": loss_weight}
        self.loss_weight = dict(loss_weight)
        if box_reg_loss_type not in ("smooth_l1", "giou"):
            raise ValueError(f"RPN: box_reg_loss_type {box_reg_loss_type!r} not supported (smooth_l1, giou)")
        self.box_reg_loss_type = box_reg_loss_type
        self.smooth_l1_beta = smooth_l1_beta

    def _subsample_labels(self, label: torch.Tensor) -> torch.Tensor:
        """Keep a random sample of positives/negatives; the rest become -1 (ignored)."""
        pos_idx, neg_idx = subsample_labels(label, self.batch_size_per_image, self.positive_fraction, 0)
        label = torch.full_like(label, -1)
        label.scatter_(0, pos_idx, 1)
        label.scatter_(0, neg_idx, 0)
        return label

    @torch.no_grad()
    def label_and_sample_anchors(
        self, anchors: list[Boxes], gt_instances: list[Instances]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per image: labels [R] in {1, 0, -1} (sampled) and matched GT boxes [R, 4] over all R anchors."""
        anchors = Boxes.cat(anchors)
        gt_labels, matched_gt_boxes = [], []
        for inst in gt_instances:
            gt_boxes = inst.gt_boxes
            matched_idxs, labels = self.anchor_matcher(pairwise_iou(gt_boxes, anchors))
            labels = labels.to(device=gt_boxes.device, dtype=torch.int64)
            if self.anchor_boundary_thresh >= 0:
                inside = anchors.inside_box(inst.image_size, self.anchor_boundary_thresh)
                labels[~inside] = -1
            labels = self._subsample_labels(labels)
            if len(gt_boxes) == 0:
                matched = torch.zeros_like(anchors.tensor)
            else:
                matched = gt_boxes.tensor[matched_idxs]
            gt_labels.append(labels)
            matched_gt_boxes.append(matched)
        return gt_labels, matched_gt_boxes

    def losses(
        self,
        anchors: list[Boxes],
        pred_objectness_logits: list[torch.Tensor],
        gt_labels: list[torch.Tensor],
        pred_anchor_deltas: list[torch.Tensor],
        gt_boxes: list[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Objectness BCE over sampled anchors + box loss over sampled positives, / (batch_size_per_image x N).

        Args:
            pred_objectness_logits: per level [N, Ri]; pred_anchor_deltas: per level [N, Ri, 4].
            gt_labels, gt_boxes: per image [R], [R, 4] from `label_and_sample_anchors`.
        """
        num_images = len(gt_labels)
        gt_labels = torch.stack(gt_labels)
        pos_mask = gt_labels == 1
        loc = _dense_box_regression_loss(
            anchors,
            self.box2box_transform,
            pred_anchor_deltas,
            gt_boxes,
            pos_mask,
            self.box_reg_loss_type,
            self.smooth_l1_beta,
        )
        valid = gt_labels >= 0
        obj = F.binary_cross_entropy_with_logits(
            cat(pred_objectness_logits, dim=1)[valid], gt_labels[valid].to(torch.float32), reduction="sum"
        )
        normalizer = self.batch_size_per_image * num_images
        losses = {"loss_rpn_cls": obj / normalizer, "loss_rpn_loc": loc / normalizer}
        return {k: v * self.loss_weight.get(k, 1.0) for k, v in losses.items()}

    def forward(
        self, images: ImageList, features: dict[str, torch.Tensor], gt_instances: list[Instances] | None = None
    ) -> tuple[list[Instances], dict[str, torch.Tensor]]:
        """Returns (proposals per image, losses); losses are empty at test time."""
        features = [features[f] for f in self.in_features]
        anchors = self.anchor_generator(features)
        logits, deltas = self.rpn_head(features)
        # [N, A, H, W] -> [N, H*W*A]: anchor order (y, x, a) like the anchor generator
        logits = [x.permute(0, 2, 3, 1).flatten(1) for x in logits]
        box_dim = self.anchor_generator.box_dim
        deltas = [
            x.view(x.shape[0], -1, box_dim, x.shape[-2], x.shape[-1]).permute(0, 3, 4, 1, 2).flatten(1, -2)
            for x in deltas
        ]
        if self.training:
            if gt_instances is None:
                raise ValueError("RPN: training needs gt_instances (the inputs' 'instances')")
            gt_labels, gt_boxes = self.label_and_sample_anchors(anchors, gt_instances)
            losses = self.losses(anchors, logits, gt_labels, deltas, gt_boxes)
        else:
            losses = {}
        proposals = self.predict_proposals(anchors, logits, deltas, images.image_sizes)
        return proposals, losses

    @torch.no_grad()
    def predict_proposals(
        self,
        anchors: list[Boxes],
        pred_objectness_logits: list[torch.Tensor],
        pred_anchor_deltas: list[torch.Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> list[Instances]:
        """Decode and select proposals (no gradient flows into the proposals, as in detectron2)."""
        boxes = self._decode_proposals(anchors, pred_anchor_deltas)
        return find_top_rpn_proposals(
            boxes,
            pred_objectness_logits,
            image_sizes,
            self.nms_thresh,
            self.pre_nms_topk[self.training],
            self.post_nms_topk[self.training],
            self.min_box_size,
            self.training,
        )

    def _decode_proposals(self, anchors: list[Boxes], pred_anchor_deltas: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per level [N, Ri, B] deltas -> [N, Ri, B] boxes."""
        n = pred_anchor_deltas[0].shape[0]
        out = []
        for a, d in zip(anchors, pred_anchor_deltas):
            b = a.tensor.size(1)
            a_t = a.tensor.unsqueeze(0).expand(n, -1, -1).reshape(-1, b)
            out.append(self.box2box_transform.apply_deltas(d.reshape(-1, b), a_t).view(n, -1, b))
        return out
