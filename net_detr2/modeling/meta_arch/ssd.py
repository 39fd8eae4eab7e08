"""SSD: the single-shot multibox detector (Liu et al., ECCV 2016) as a `DenseDetector`.

Parts, in data-flow order (each in the module named after its concept):

* `net_detr2.modeling.backbone.SSDBackbone`: a bottom-up backbone (VGG-16 or ResNet) plus SSD's extra
  layers, giving the 6 (300 input) or 7 (512 input) pyramid levels.
* `net_detr2.modeling.anchor_generator.DefaultBoxGenerator`: SSD's default boxes ("priors").
* `SSDHead` (here): one 3x3 conv per level for box deltas and one for class logits.
* `net_detr2.modeling.matcher.match_default_boxes`: best prior per ground truth + IoU >= 0.5 matching.
* `multibox_loss` (here): smooth-L1 + softmax cross-entropy with 3:1 hard negative mining, normalised
  by the number of positives.
* `SSD` (here): the `list[dict]` in / `Instances` out detector tying them together.

Class convention (as detectron2's Fast R-CNN): foreground classes are 0..K-1 and *background is K*.
Box deltas are SSD's encoding with variances (0.1, 0.2), i.e. `Box2BoxTransform(weights=(10, 10, 5, 5))`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from net_detr2.layers import batched_nms
from net_detr2.modeling.anchor_generator import DefaultBoxGenerator
from net_detr2.modeling.backbone import Backbone
from net_detr2.modeling.box_regression import Box2BoxTransform
from net_detr2.modeling.matcher import match_default_boxes, matched_classes
from net_detr2.modeling.registry import META_ARCH_REGISTRY
from net_detr2.structures import Boxes, ImageList, Instances, pairwise_iou

from .dense_detector import DenseDetector

__all__ = ["SSD", "SSDHead", "multibox_loss"]


# ---------------------------------------------------------------------------------------------
# Head
# ---------------------------------------------------------------------------------------------
class SSDHead(nn.Module):
    """Per level, a 3x3 conv predicting A*(K+1) class logits and one predicting A*4 box deltas.

    Args:
        in_channels: channels of each level.
        num_anchors: default boxes per location of each level.
        num_classes: K foreground classes (logits have K+1 entries, background last).
    """

    def __init__(self, *, in_channels: Sequence[int], num_anchors: Sequence[int], num_classes: int):
        super().__init__()
        if len(in_channels) != len(num_anchors):
            raise ValueError(
                f"SSDHead: in_channels ({len(in_channels)} levels) and num_anchors ({len(num_anchors)}) differ"
            )
        self.num_classes = num_classes
        self.cls_score = nn.ModuleList(
            nn.Conv2d(c, a * (num_classes + 1), kernel_size=3, padding=1) for c, a in zip(in_channels, num_anchors)
        )
        self.bbox_pred = nn.ModuleList(
            nn.Conv2d(c, a * 4, kernel_size=3, padding=1) for c, a in zip(in_channels, num_anchors)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Returns:
            cls_logits: (N, P, K+1); box_deltas: (N, P, 4); P in `DefaultBoxGenerator` order.
        """
        logits, deltas = [], []
        for x, cls, box in zip(features, self.cls_score, self.bbox_pred):
            n = x.shape[0]
            # (N, A*C, H, W) -> (N, H, W, A*C) -> (N, H*W*A, C): location-major, box-minor.
            logits.append(cls(x).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes + 1))
            deltas.append(box(x).permute(0, 2, 3, 1).reshape(n, -1, 4))
        return torch.cat(logits, dim=1), torch.cat(deltas, dim=1)


# ---------------------------------------------------------------------------------------------
# Loss (a pure function)
# ---------------------------------------------------------------------------------------------
def multibox_loss(
    cls_logits: torch.Tensor,
    box_deltas: torch.Tensor,
    gt_labels: torch.Tensor,
    gt_deltas: torch.Tensor,
    neg_pos_ratio: float = 3.0,
    smooth_l1_beta: float = 1.0,
) -> dict[str, torch.Tensor]:
    """SSD's multibox loss with hard negative mining.

    Per image, the ``neg_pos_ratio * num_pos`` negatives (at most all of them) with the largest
    background cross-entropy are kept. Both terms are summed and divided by the total number of
    positives in the batch (at least 1).

    Args:
        cls_logits: (N, P, K+1); background is index K.
        box_deltas: (N, P, 4) predicted deltas.
        gt_labels: (N, P) int64 in [0, K]; K = background.
        gt_deltas: (N, P, 4) target deltas (only read at positives).
    Returns:
        {"loss_cls": scalar, "loss_box_reg": scalar}.
    """
    N, P, C = cls_logits.shape
    background = C - 1
    pos = gt_labels != background
    num_pos = pos.sum(dim=1, keepdim=True)  # (N, 1)
    ce = F.cross_entropy(cls_logits.reshape(-1, C), gt_labels.reshape(-1), reduction="none").reshape(N, P)
    with torch.no_grad():
        # Rank negatives by their loss (positives pushed last) and keep the top num_neg per image.
        mining = ce.detach().masked_fill(pos, float("-inf"))
        order = mining.argsort(dim=1, descending=True)
        rank = order.argsort(dim=1)
        num_neg = torch.minimum(num_pos * neg_pos_ratio, P - num_pos).to(rank.dtype)
        neg = rank < num_neg
    normalizer = num_pos.sum().clamp(min=1).to(cls_logits.dtype)
    loss_cls = ce[pos | neg].sum() / normalizer
    loss_box = F.smooth_l1_loss(box_deltas[pos], gt_deltas[pos], beta=smooth_l1_beta, reduction="sum") / normalizer
    return {"loss_cls": loss_cls, "loss_box_reg": loss_box}


# ---------------------------------------------------------------------------------------------
# Meta-architecture
# ---------------------------------------------------------------------------------------------
@META_ARCH_REGISTRY.register()
class SSD(DenseDetector):
    """Single-shot multibox detector.

    Args:
        backbone: a `Backbone` whose outputs (in ``head_in_features`` order) are the pyramid levels.
        head: `SSDHead` (or compatible): features -> (cls_logits [N, P, K+1], box_deltas [N, P, 4]).
        prior_generator: `DefaultBoxGenerator`.
        num_classes: K foreground classes.
        pixel_mean, pixel_std, input_format: see `DetectorBase`.
        head_in_features: backbone outputs to use, shallow to deep (default: all, in output_shape order).
        box_variances: SSD's (center, size) variances; deltas are divided by them.
        iou_threshold: matching threshold (0.5).
        neg_pos_ratio: hard negative mining ratio (3).
        smooth_l1_beta: beta of the smooth-L1 box loss (1.0 as in SSD).
        test_score_thresh: per-class score threshold at inference (0.01).
        test_topk_candidates: per-class candidates kept before NMS (400).
        test_nms_thresh: per-class NMS IoU (0.45).
        max_detections_per_image: 200.
        vis_period: see `DetectorBase` (the right half shows the training image's detections).
    """

    def __init__(
        self,
        *,
        backbone: Backbone,
        head: nn.Module,
        prior_generator: DefaultBoxGenerator,
        num_classes: int,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        head_in_features: Sequence[str] | None = None,
        input_format: str = "BGR",
        box_variances: tuple[float, float] = (0.1, 0.2),
        iou_threshold: float = 0.5,
        neg_pos_ratio: float = 3.0,
        smooth_l1_beta: float = 1.0,
        test_score_thresh: float = 0.01,
        test_topk_candidates: int = 400,
        test_nms_thresh: float = 0.45,
        max_detections_per_image: int = 200,
        vis_period: int = 0,
    ):
        shapes = backbone.output_shape()
        head_in_features = list(head_in_features) if head_in_features is not None else list(shapes)
        for f in head_in_features:
            if f not in shapes:
                raise ValueError(f"SSD: head_in_feature {f!r} is not a backbone output; available: {list(shapes)}")
        if len(head_in_features) != prior_generator.num_levels:
            raise ValueError(
                f"SSD: {len(head_in_features)} feature levels {head_in_features} but the default boxes are "
                f"configured for {prior_generator.num_levels} levels"
            )
        if input_format not in ("BGR", "RGB"):
            raise ValueError(f"SSD: input_format must be 'BGR' or 'RGB', got {input_format!r}")
        super().__init__(
            backbone=backbone,
            head=head,
            head_in_features=head_in_features,
            pixel_mean=pixel_mean,
            pixel_std=pixel_std,
            input_format=input_format,
            vis_period=vis_period,
        )
        self.prior_generator = prior_generator
        self.num_classes = num_classes
        cv, sv = box_variances
        self.box2box_transform = Box2BoxTransform(weights=(1.0 / cv, 1.0 / cv, 1.0 / sv, 1.0 / sv))
        self.iou_threshold = iou_threshold
        self.neg_pos_ratio = neg_pos_ratio
        self.smooth_l1_beta = smooth_l1_beta
        self.test_score_thresh = test_score_thresh
        self.test_topk_candidates = test_topk_candidates
        self.test_nms_thresh = test_nms_thresh
        self.max_detections_per_image = max_detections_per_image

    @property
    def in_features(self) -> list[str]:
        """The backbone levels the head reads: `head_in_features` under SSD's earlier name."""
        return self.head_in_features

    def preprocess_image(self, batched_inputs: list[dict], key: str = "image") -> ImageList:
        """`DetectorBase.preprocess_image`, refusing batches of mixed sizes: the default boxes and their
        clipping are laid out for one input size, which the SSD mapper gives every image."""
        images = super().preprocess_image(batched_inputs, key)
        sizes = set(images.image_sizes)
        if len(sizes) > 1:
            raise ValueError(
                "SSD: all images of a batch must have the same size (the SSD mapper resizes them), "
                f"got sizes {sorted(sizes)}"
            )
        return images

    def default_boxes(self, images: ImageList, features: list[torch.Tensor]) -> torch.Tensor:
        """(P, 4) XYXY default boxes for these feature maps and this input size."""
        return self.prior_generator([f.shape[-2:] for f in features], images.tensor.shape[-2:], device=self.device)

    def forward_training(
        self, images: ImageList, features: list[torch.Tensor], predictions, gt_instances: list[Instances]
    ) -> dict[str, torch.Tensor]:
        cls_logits, box_deltas = predictions
        gt_labels, gt_deltas = self.label_default_boxes(self.default_boxes(images, features), gt_instances)
        return multibox_loss(
            cls_logits,
            box_deltas,
            gt_labels,
            gt_deltas,
            neg_pos_ratio=self.neg_pos_ratio,
            smooth_l1_beta=self.smooth_l1_beta,
        )

    def forward_inference(self, images: ImageList, features: list[torch.Tensor], predictions) -> list[Instances]:
        cls_logits, box_deltas = predictions
        return self.inference(self.default_boxes(images, features), cls_logits, box_deltas, images.image_sizes)

    @torch.no_grad()
    def label_default_boxes(
        self, priors: torch.Tensor, gt_instances: list[Instances]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Returns:
            gt_labels: (N, P) int64, class of the matched ground truth or K (background);
            gt_deltas: (N, P, 4) encoded matched ground-truth boxes (zeros where unmatched).
        """
        prior_boxes = Boxes(priors)
        labels, deltas = [], []
        for inst in gt_instances:
            gt_boxes = inst.gt_boxes
            iou = pairwise_iou(gt_boxes, prior_boxes)
            matched, is_fg = match_default_boxes(iou, self.iou_threshold)
            labels.append(matched_classes(inst.gt_classes, matched, is_fg.to(torch.int8), self.num_classes))
            if len(inst) > 0:
                deltas.append(self.box2box_transform.get_deltas(priors, gt_boxes.tensor[matched]))
            else:
                deltas.append(torch.zeros_like(priors))
        return torch.stack(labels), torch.stack(deltas)

    @torch.no_grad()
    def inference(
        self,
        priors: torch.Tensor,
        cls_logits: torch.Tensor,
        box_deltas: torch.Tensor,
        image_sizes: list[tuple[int, int]],
    ) -> list[Instances]:
        """Per class: score > thresh, top-k candidates, class-wise NMS; then the best detections per image."""
        scores_all = cls_logits.softmax(dim=-1)[..., : self.num_classes]  # (N, P, K)
        N, P, K = scores_all.shape
        results = []
        for i in range(N):
            boxes = self.box2box_transform.apply_deltas(box_deltas[i], priors)
            boxes = Boxes(boxes)
            boxes.clip(image_sizes[i])
            k = min(self.test_topk_candidates, P)
            top_scores, top_idx = scores_all[i].topk(k, dim=0)  # (k, K) per class
            keep = top_scores > self.test_score_thresh
            classes = torch.arange(K, device=priors.device).expand(k, K)[keep]
            prior_idx = top_idx[keep]
            scores = top_scores[keep]
            cand = boxes.tensor[prior_idx]
            kept = batched_nms(cand, scores, classes, self.test_nms_thresh)[: self.max_detections_per_image]
            res = Instances(image_sizes[i])
            res.pred_boxes = Boxes(cand[kept])
            res.scores = scores[kept]
            res.pred_classes = classes[kept]
            results.append(res)
        return results
