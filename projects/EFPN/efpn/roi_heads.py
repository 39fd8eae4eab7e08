"""ROI heads of EFPN: small RoIs go to the extended level P2' and its own box head.

Routing (decided here, the paper only says "RoIs of size smaller than 112/56"): an RoI is small
when ``sqrt(w * h) < small_roi_threshold``, the same size measure as FPN's level mapping (Eq. 2);
with the COCO threshold 112 and the canonical 224 px / level 4 these are exactly the RoIs FPN
would pool from P2. Small RoIs are pooled from P2' by `p2_box_head` + `p2_box_predictor`, the
others from P2-P5 by the base head as in FPN; in inference the class probabilities and decoded
boxes of both sets are concatenated per image and go through one score threshold + per-class NMS
+ top-k (`fast_rcnn_inference`), i.e. merged before the final NMS.

The P2' head starts as a copy of the base head: at construction (deep copy) and again whenever a
state dict without P2'-head entries is loaded (e.g. the stage-1 FPN checkpoint), via a load hook.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from net_detr2.modeling.matcher import matched_classes
from net_detr2.modeling.poolers import ROIPooler
from net_detr2.modeling.proposal_generator.proposal_utils import add_ground_truth_to_proposals
from net_detr2.modeling.registry import ROI_HEADS_REGISTRY
from net_detr2.modeling.roi_heads import StandardROIHeads, fast_rcnn_inference
from net_detr2.structures import Boxes, Instances, pairwise_iou

__all__ = ["EFPNROIHeads", "small_roi_mask", "ohem_select"]

# under "net_detr2" so that the trainer's log handlers record it
logger = logging.getLogger("net_detr2.projects.efpn")


def small_roi_mask(boxes: Boxes, threshold: float) -> torch.Tensor:
    """bool [R]: ``sqrt(area) < threshold`` (boxes in input-image pixels)."""
    return boxes.area().clamp(min=0).sqrt() < threshold


def ohem_select(
    cls_loss: torch.Tensor, box_loss: torch.Tensor, is_fg: torch.Tensor, batch_size: int, positive_fraction: float
) -> torch.Tensor:
    """Online hard example mining on one image's RoIs.

    Positives: the ``int(batch_size * positive_fraction)`` foreground RoIs with the largest
    cls + box loss; negatives fill the rest of ``batch_size`` with the largest cls loss.

    Args:
        cls_loss, box_loss: float [R] per-RoI losses (box loss 0 for background).
        is_fg: bool [R].
    Returns:
        bool [R] selection mask.
    """
    n = cls_loss.numel()
    ranks = torch.arange(n, device=cls_loss.device)
    neg_inf = torch.tensor(float("-inf"), device=cls_loss.device)

    def rank_of(key: torch.Tensor) -> torch.Tensor:
        order = torch.argsort(key, descending=True, stable=True)
        rank = torch.empty_like(ranks)
        rank[order] = ranks
        return rank

    max_pos = int(batch_size * positive_fraction)
    fg_rank = rank_of(torch.where(is_fg, cls_loss + box_loss, neg_inf))
    take_fg = is_fg & (fg_rank < max_pos)
    bg_rank = rank_of(torch.where(is_fg, neg_inf, cls_loss))
    num_bg = batch_size - torch.clamp(is_fg.sum(), max=max_pos)  # a tensor: no host sync
    take_bg = ~is_fg & (bg_rank < num_bg)
    return take_fg | take_bg


@ROI_HEADS_REGISTRY.register()
class EFPNROIHeads(StandardROIHeads):
    """`StandardROIHeads` + a second box head on the extended level P2' for small RoIs.

    Args:
        p2_prime_pooler: `ROIPooler` on the single level P2' (scales (1/2,)).
        p2_prime_in_feature: name of P2' in the backbone outputs.
        small_roi_threshold: RoIs with sqrt(area) below it (input pixels) use P2' (112 COCO@800, 56 TT100K@1400).
        duplicate_small_rois: also send small RoIs to the base head (the public code's routing).
        p2_box_head, p2_box_predictor: None (default) = deep copies of `box_head` / `box_predictor`.
        train_base_head, train_p2_head: which heads produce training losses (stage 3: only P2').
        p2_ohem: train the P2' head with OHEM over all labelled small RoIs instead of the random sample.
        ohem_batch_size_per_image: RoIs kept by OHEM per image (None = `batch_size_per_image`).
        ohem_positive_fraction: largest positive share of the OHEM batch (0.25).
        detection_layer, detection_layer_pooler: inference only (Table V): pool every RoI from the single
            map ``features[detection_layer]`` (e.g. "p3", "p3_prime", or the teacher's "p3_2x") with
            ``detection_layer_pooler`` and the base head, instead of the pyramid and P2'.
        box_in_features, box_pooler, box_head, box_predictor, num_classes, batch_size_per_image,
            positive_fraction, proposal_matcher, proposal_append_gt: as for `StandardROIHeads`.

    Loss keys: base head "loss_cls"/"loss_box_reg", P2' head "loss_cls_p2"/"loss_box_reg_p2".
    """

    def __init__(
        self,
        *,
        box_in_features: list[str],
        box_pooler: ROIPooler,
        box_head: nn.Module,
        box_predictor: nn.Module,
        num_classes: int,
        batch_size_per_image: int,
        positive_fraction: float,
        proposal_matcher,
        proposal_append_gt: bool = True,
        p2_prime_pooler: ROIPooler,
        p2_prime_in_feature: str = "p2_prime",
        small_roi_threshold: float = 112.0,
        duplicate_small_rois: bool = False,
        p2_box_head: nn.Module | None = None,
        p2_box_predictor: nn.Module | None = None,
        train_base_head: bool = True,
        train_p2_head: bool = True,
        p2_ohem: bool = False,
        ohem_batch_size_per_image: int | None = None,
        ohem_positive_fraction: float = 0.25,
        detection_layer: str | None = None,
        detection_layer_pooler: ROIPooler | None = None,
    ):
        super().__init__(
            box_in_features=box_in_features,
            box_pooler=box_pooler,
            box_head=box_head,
            box_predictor=box_predictor,
            num_classes=num_classes,
            batch_size_per_image=batch_size_per_image,
            positive_fraction=positive_fraction,
            proposal_matcher=proposal_matcher,
            proposal_append_gt=proposal_append_gt,
        )
        if len(p2_prime_pooler.level_poolers) != 1:
            raise ValueError("EFPNROIHeads: p2_prime_pooler must pool from the single level P2' (one scale)")
        if small_roi_threshold <= 0:
            raise ValueError(f"EFPNROIHeads: small_roi_threshold must be > 0, got {small_roi_threshold}")
        if not (train_base_head or train_p2_head):
            raise ValueError("EFPNROIHeads: train_base_head and train_p2_head are both False")
        self.p2_prime_pooler = p2_prime_pooler
        self.p2_prime_in_feature = p2_prime_in_feature
        self.small_roi_threshold = float(small_roi_threshold)
        self.duplicate_small_rois = duplicate_small_rois
        self.p2_box_head = p2_box_head if p2_box_head is not None else copy.deepcopy(self.box_head)
        self.p2_box_predictor = p2_box_predictor if p2_box_predictor is not None else copy.deepcopy(self.box_predictor)
        self.train_base_head = train_base_head
        self.train_p2_head = train_p2_head
        self.p2_ohem = p2_ohem
        self.ohem_batch_size_per_image = ohem_batch_size_per_image or self.batch_size_per_image
        self.ohem_positive_fraction = ohem_positive_fraction
        if (detection_layer is None) != (detection_layer_pooler is None):
            raise ValueError("EFPNROIHeads: detection_layer and detection_layer_pooler go together")
        if detection_layer_pooler is not None and len(detection_layer_pooler.level_poolers) != 1:
            raise ValueError("EFPNROIHeads: detection_layer_pooler must pool from one level (one scale)")
        self.detection_layer = detection_layer
        self.detection_layer_pooler = detection_layer_pooler
        self.register_load_state_dict_pre_hook(_copy_base_head_into_missing_p2_head)

    # ------------------------------------------------------------------ routing
    def route(self, proposals: list[Instances]) -> tuple[list[Instances], list[Instances]]:
        """Split per-image proposals into (small -> P2' head, others -> base head).

        With `duplicate_small_rois` the base head gets every proposal.
        """
        small, base = [], []
        for p in proposals:
            mask = small_roi_mask(p.proposal_boxes, self.small_roi_threshold)
            small.append(p[mask])
            base.append(p if self.duplicate_small_rois else p[~mask])
        return small, base

    def _p2_predictions(self, features: dict[str, torch.Tensor], proposals: list[Instances]):
        box_features = self.p2_prime_pooler([features[self.p2_prime_in_feature]], [p.proposal_boxes for p in proposals])
        return self.p2_box_predictor(self.p2_box_head(box_features))

    def _base_predictions(self, features: dict[str, torch.Tensor], proposals: list[Instances]):
        box_features = self._pool_box_features(features, proposals)
        box_features = self._after_box_pooling(box_features, proposals)
        return self._box_predictions(box_features)

    # ---------------------------------------------------------------- inference
    def _forward_box(self, features: dict[str, torch.Tensor], proposals: list[Instances]):
        if self.training:
            raise RuntimeError("EFPNROIHeads._forward_box is the inference path; training goes through forward()")
        small, base = self.route(proposals)
        branches = []
        if sum(len(p) for p in small) > 0:
            branches.append((self.p2_box_predictor, self._p2_predictions(features, small), small))
        if sum(len(p) for p in base) > 0:
            branches.append((self.box_predictor, self._base_predictions(features, base), base))
        boxes = [[] for _ in proposals]
        scores = [[] for _ in proposals]
        for predictor, predictions, props in branches:
            for i, (b, s) in enumerate(
                zip(predictor.predict_boxes(predictions, props), predictor.predict_probs(predictions, props))
            ):
                boxes[i].append(b)
                scores[i].append(s)
        num_classes = self.box_predictor.num_classes
        box_cols = self.box_predictor.bbox_pred.out_features
        device = features[self.p2_prime_in_feature].device
        boxes = [torch.cat(b) if b else torch.zeros(0, box_cols, device=device) for b in boxes]
        scores = [torch.cat(s) if s else torch.zeros(0, num_classes + 1, device=device) for s in scores]
        pred = self.box_predictor
        instances, _ = fast_rcnn_inference(
            boxes,
            scores,
            [p.image_size for p in proposals],
            pred.test_score_thresh,
            pred.test_nms_thresh,
            pred.test_topk_per_image,
        )
        return instances

    def _single_layer_inference(self, images, features: dict[str, torch.Tensor], proposals: list[Instances]):
        """Every RoI pooled from ``features[detection_layer]`` through the base head (Table V)."""
        name = self.detection_layer
        if name not in features:
            raise KeyError(f"EFPNROIHeads: detection_layer {name!r} is not among the features {sorted(features)}")
        x = features[name]
        scale = x.shape[-1] / images.tensor.shape[-1]
        pooler_scale = self.detection_layer_pooler.level_poolers[0].spatial_scale
        if abs(scale - pooler_scale) > 1e-6:
            raise ValueError(
                f"EFPNROIHeads: {name!r} is at scale {scale} of the input but detection_layer_pooler pools at "
                f"{pooler_scale}"
            )
        box_features = self.detection_layer_pooler([x], [p.proposal_boxes for p in proposals])
        instances, _ = self.box_predictor.inference(self._box_predictions(box_features), proposals)
        return instances

    # ----------------------------------------------------------------- training
    def forward(
        self,
        images,
        features: dict[str, torch.Tensor],
        proposals: list[Instances],
        targets: list[Instances] | None = None,
    ):
        """Training: (sampled proposals, losses of the enabled heads). Test: (merged detections, {})."""
        if self.detection_layer is not None:
            if self.training:
                raise RuntimeError("EFPNROIHeads: detection_layer is an inference-only diagnostic (Table V)")
            return self._single_layer_inference(images, features, proposals), {}
        if not self.training:
            instances = self._forward_box(features, proposals)
            return self.forward_with_given_boxes(features, instances), {}
        if targets is None:
            raise ValueError("EFPNROIHeads: training needs targets (the inputs' 'instances')")
        losses: dict[str, torch.Tensor] = {}
        sampled = proposals
        if self.train_base_head or not self.p2_ohem:
            sampled = self.label_and_sample_proposals(proposals, targets)
            small, base = self.route(sampled)
            if self.train_base_head:
                losses.update(self._branch_losses(self.box_predictor, self._base_predictions, features, base, ""))
            if self.train_p2_head and not self.p2_ohem:
                losses.update(self._branch_losses(self.p2_box_predictor, self._p2_predictions, features, small, "_p2"))
        if self.train_p2_head and self.p2_ohem:
            small, _ = self.route(self.label_all_proposals(proposals, targets))
            losses.update(self._ohem_p2_losses(features, small))
        return sampled, losses

    def _branch_losses(self, predictor, predict_fn, features, proposals: list[Instances], suffix: str):
        if sum(len(p) for p in proposals) == 0:
            # No RoI for this head in the batch: zero losses that still touch its parameters, so
            # every trainable parameter takes part in the graph (DDP) and the loss keys stay stable.
            zero = sum(p.sum() for p in predictor.parameters()) * 0.0
            return {"loss_cls" + suffix: zero, "loss_box_reg" + suffix: zero.clone()}
        predictions = predict_fn(features, proposals)
        return {k + suffix: v for k, v in predictor.losses(predictions, proposals).items()}

    @torch.no_grad()
    def label_all_proposals(self, proposals: list[Instances], targets: list[Instances]) -> list[Instances]:
        """Like `label_and_sample_proposals` but keeping every non-ignored proposal (OHEM selects later)."""
        if self.proposal_append_gt:
            proposals = add_ground_truth_to_proposals(targets, proposals)
        out = []
        for p, t in zip(proposals, targets):
            matched_idxs, matched_labels = self.proposal_matcher(pairwise_iou(t.gt_boxes, p.proposal_boxes))
            gt_classes = matched_classes(t.gt_classes, matched_idxs, matched_labels, self.num_classes)
            keep = gt_classes >= 0
            labelled = p[keep]
            labelled.gt_classes = gt_classes[keep]
            if len(t) > 0:
                labelled.gt_boxes = t.gt_boxes[matched_idxs[keep]]
            out.append(labelled)
        return out

    def _ohem_p2_losses(self, features: dict[str, torch.Tensor], small: list[Instances]) -> dict[str, torch.Tensor]:
        """OHEM (Shrivastava et al.): a read-only pass ranks every small RoI, the hardest are trained on."""
        if sum(len(p) for p in small) == 0:
            return self._branch_losses(self.p2_box_predictor, self._p2_predictions, features, small, "_p2")
        with torch.no_grad():
            cls_loss, box_loss = self.p2_box_predictor.per_roi_losses(self._p2_predictions(features, small), small)
        selected = []
        for p, c, b in zip(small, cls_loss.split([len(p) for p in small]), box_loss.split([len(p) for p in small])):
            is_fg = p.gt_classes < self.num_classes
            selected.append(p[ohem_select(c, b, is_fg, self.ohem_batch_size_per_image, self.ohem_positive_fraction)])
        return self._branch_losses(self.p2_box_predictor, self._p2_predictions, features, selected, "_p2")


def _copy_base_head_into_missing_p2_head(
    module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
):
    """Load hook: a state dict without the P2' head (an FPN checkpoint) initialises it from the base head."""
    for p2_name, base_name in (("p2_box_head", "box_head"), ("p2_box_predictor", "box_predictor")):
        keys = list(getattr(module, p2_name).state_dict().keys())
        if any(prefix + f"{p2_name}.{k}" in state_dict for k in keys):
            continue
        if not all(prefix + f"{base_name}.{k}" in state_dict for k in keys):
            continue
        for k in keys:
            state_dict[prefix + f"{p2_name}.{k}"] = state_dict[prefix + f"{base_name}.{k}"].clone()
        logger.info("EFPN: %s%s initialised from the loaded %s%s", prefix, p2_name, prefix, base_name)
