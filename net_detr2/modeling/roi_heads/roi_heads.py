"""ROI heads: sample proposals against the ground truth, pool their features and predict boxes."""

from __future__ import annotations

import torch
from torch import nn

from net_detr2.modeling.matcher import Matcher, matched_classes
from net_detr2.modeling.poolers import ROIPooler
from net_detr2.modeling.proposal_generator.proposal_utils import add_ground_truth_to_proposals
from net_detr2.modeling.registry import ROI_HEADS_REGISTRY
from net_detr2.modeling.sampling import subsample_labels
from net_detr2.structures import ImageList, Instances, pairwise_iou

__all__ = ["ROIHeads", "StandardROIHeads", "select_foreground_proposals"]


def select_foreground_proposals(
    proposals: list[Instances], bg_label: int
) -> tuple[list[Instances], list[torch.Tensor]]:
    """Keep the proposals whose gt_classes is a foreground class; also return the boolean masks."""
    fg, masks = [], []
    for p in proposals:
        m = (p.gt_classes != -1) & (p.gt_classes != bg_label)
        fg.append(p[m])
        masks.append(m)
    return fg, masks


class ROIHeads(nn.Module):
    """Base of the ROI heads: owns the proposal <-> ground-truth matching and sampling for training.

    Args:
        num_classes: K foreground classes (label K = background).
        batch_size_per_image: RoIs sampled per image for the losses.
        positive_fraction: largest foreground share of the sample.
        proposal_matcher: Matcher labelling proposals 1 (fg) / 0 (bg) / -1 (ignore).
        proposal_append_gt: add the GT boxes to the proposals before sampling.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        batch_size_per_image: int,
        positive_fraction: float,
        proposal_matcher: Matcher,
        proposal_append_gt: bool = True,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.proposal_matcher = proposal_matcher
        self.proposal_append_gt = proposal_append_gt

    def _sample_proposals(
        self, matched_idxs: torch.Tensor, matched_labels: torch.Tensor, gt_classes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample RoIs of one image -> (sampled indices, their class labels, K = background)."""
        gt_classes = matched_classes(gt_classes, matched_idxs, matched_labels, self.num_classes)
        fg, bg = subsample_labels(gt_classes, self.batch_size_per_image, self.positive_fraction, self.num_classes)
        idx = torch.cat([fg, bg], dim=0)
        return idx, gt_classes[idx]

    @torch.no_grad()
    def label_and_sample_proposals(self, proposals: list[Instances], targets: list[Instances]) -> list[Instances]:
        """Per image: sampled proposals with ``gt_classes`` and the matched ``gt_*`` fields of the targets.

        Images without ground truth get only ``gt_classes`` (all background).
        """
        if self.proposal_append_gt:
            proposals = add_ground_truth_to_proposals(targets, proposals)
        out = []
        for p, t in zip(proposals, targets):
            has_gt = len(t) > 0
            matched_idxs, matched_labels = self.proposal_matcher(pairwise_iou(t.gt_boxes, p.proposal_boxes))
            idx, gt_classes = self._sample_proposals(matched_idxs, matched_labels, t.gt_classes)
            p = p[idx]
            p.gt_classes = gt_classes
            if has_gt:
                sampled_targets = matched_idxs[idx]
                for name, value in t.get_fields().items():
                    if name.startswith("gt_") and not p.has(name):
                        p.set(name, value[sampled_targets])
            out.append(p)
        return out

    def forward(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        proposals: list[Instances],
        targets: list[Instances] | None = None,
    ):
        raise NotImplementedError


@ROI_HEADS_REGISTRY.register()
class StandardROIHeads(ROIHeads):
    """Box branch of Faster R-CNN: ROIPooler -> box head -> FastRCNNOutputLayers.

    `_forward_box` is split into overridable steps: `_pool_box_features`, `_after_box_pooling`
    (identity here: a hook on the pooled features, e.g. for Inverted Attention), `_box_predictions`.

    Args:
        box_in_features: feature names pooled from (e.g. p2..p5).
        box_pooler: ROIPooler; box_head: e.g. FastRCNNConvFCHead; box_predictor: FastRCNNOutputLayers.
        (other args: see `ROIHeads`.)
    """

    def __init__(
        self,
        *,
        box_in_features: list[str],
        box_pooler: ROIPooler,
        box_head: nn.Module,
        box_predictor: nn.Module,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_features = self.box_in_features = list(box_in_features)
        self.box_pooler = box_pooler
        self.box_head = box_head
        self.box_predictor = box_predictor

    def forward(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        proposals: list[Instances],
        targets: list[Instances] | None = None,
    ):
        """Training: (sampled proposals, losses). Test: (detections per image in the input frame, {})."""
        del images
        if self.training:
            if targets is None:
                raise ValueError("StandardROIHeads: training needs targets (the inputs' 'instances')")
            proposals = self.label_and_sample_proposals(proposals, targets)
            return proposals, self._forward_box(features, proposals)
        return self._forward_box(features, proposals), {}

    def _pool_box_features(self, features: dict[str, torch.Tensor], proposals: list[Instances]) -> torch.Tensor:
        """[R, C, h, w] pooled features of all proposals (images concatenated)."""
        feats = [features[f] for f in self.box_in_features]
        return self.box_pooler(feats, [p.proposal_boxes for p in proposals])

    def _after_box_pooling(self, box_features: torch.Tensor, proposals: list[Instances]) -> torch.Tensor:
        """Hook on the pooled RoI features before the box head; identity in the baseline."""
        return box_features

    def _box_predictions(self, box_features: torch.Tensor):
        """Box head + predictor: pooled features -> (scores [R, K+1], deltas [R, K*4])."""
        return self.box_predictor(self.box_head(box_features))

    def _forward_box(self, features: dict[str, torch.Tensor], proposals: list[Instances]):
        """Training: box losses dict. Test: list of Instances (pred_boxes, scores, pred_classes)."""
        box_features = self._pool_box_features(features, proposals)
        box_features = self._after_box_pooling(box_features, proposals)
        predictions = self._box_predictions(box_features)
        del box_features
        if self.training:
            return self.box_predictor.losses(predictions, proposals)
        pred_instances, _ = self.box_predictor.inference(predictions, proposals)
        return pred_instances

    def forward_with_given_boxes(
        self, features: dict[str, torch.Tensor], instances: list[Instances]
    ) -> list[Instances]:
        """No mask/keypoint branches here: the given detections are returned unchanged."""
        if self.training:
            raise RuntimeError("forward_with_given_boxes is for inference only")
        return instances
