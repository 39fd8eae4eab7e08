"""ROI heads trained with Inverted Attention (training-only; inference is the parent's, unchanged)."""

from __future__ import annotations

import torch
from torch import nn

from net_detr2.modeling import ROI_HEADS_REGISTRY, StandardROIHeads
from net_detr2.structures import Instances
from net_detr2.utils.eval_mode import eval_mode

from .attention import (
    INVERSION_STRATEGIES,
    ORIENTATIONS,
    ROI_SELECTIONS,
    gradient_attention,
    gt_probability,
    inverted_attention_mask,
    select_random,
    select_top_per_group,
)

__all__ = ["IAROIHeads", "eval_mode", "ground_truth_logit_gradient"]


def ground_truth_logit_gradient(
    box_head: nn.Module, box_predictor: nn.Module, box_features: torch.Tensor, gt_classes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of each RoI's ground-truth-class logit w.r.t. its pooled features.

    Runs with ``box_head`` and ``box_predictor`` in eval mode (so dropout/BatchNorm do not change
    the probe and RoIs do not interact), on a detached copy of the features, with
    ``torch.autograd.grad`` so that no parameter's ``.grad`` is touched.

    Args:
        box_head: pooled features -> box features (e.g. FastRCNNConvFCHead).
        box_predictor: box features -> (class logits (R, K + 1), deltas), e.g. FastRCNNOutputLayers.
        box_features: (R, C, H, W) pooled RoI features.
        gt_classes: (R,) int64 in [0, K]; K (= num_classes) is background.

    Returns:
        grads: (R, C, H, W).
        logits: (R, K + 1) detached class logits of the features.
    """
    probe = box_features.detach().requires_grad_(True)
    with torch.enable_grad(), eval_mode(box_head, box_predictor):
        logits = box_predictor(box_head(probe))[0]
        # RoIs are independent in eval mode, so the gradient of the sum is each RoI's own.
        selected = logits.gather(1, gt_classes[:, None]).sum()
        (grads,) = torch.autograd.grad(selected, probe)
    return grads, logits.detach()


@ROI_HEADS_REGISTRY.register()
class IAROIHeads(StandardROIHeads):
    """:class:`StandardROIHeads` whose box branch trains on inverted-attention-masked RoI features.

    In training, after RoI pooling (Algorithm 1 of the paper):

    1. probe: with the box head and predictor in eval mode, the gradient of each RoI's
       ground-truth-class logit (background RoIs: the background logit) w.r.t. the *detached*
       pooled features, by ``torch.autograd.grad`` (no parameter gradient is touched);
    2. attention ``M = sum_c w_c F_c`` with ``w`` the spatial mean of that gradient (Eq. 1);
    3. inverted mask ``A`` by ``inversion_strategy`` and ``orientation`` (Eq. 2-4);
    4. a share of RoIs is chosen (``roi_selection``); the others keep ``A = 1``;
    5. the box losses are the parent's, computed on ``F * A`` (Eq. 5-7).

    All of it lives in the parent's ``_after_box_pooling`` hook, which is the identity at test
    time: inference is exactly :class:`StandardROIHeads`' and IA costs nothing there.
    """

    def __init__(
        self,
        *,
        inversion_strategy: str = "soft",
        orientation: str = "spatial",
        roi_selection: str = "probability_drop",
        spatial_drop_fraction: float = 1.0 / 3.0,
        hard_threshold: float = 0.5,
        channel_fraction: float = 0.8,
        fg_fraction: float = 1.0 / 5.0,
        bg_fraction: float = 1.0 / 30.0,
        random_roi_fraction: float = 0.2,
        **kwargs,
    ):
        """
        Args:
            inversion_strategy: "soft" (zero the top ``spatial_drop_fraction`` positions of ``M``;
                default), "hard" (zero where normalised ``M > hard_threshold``), "overturn"
                (``1 - normalised M``) or "random" (Table 2).
            orientation: "spatial" (default), "channel" or "spatial+channel" (Table 3).
            roi_selection: "probability_drop" (per group, the RoIs whose ground-truth probability
                the mask lowers most: ``fg_fraction`` of foreground and ``bg_fraction`` of
                background RoIs; the authors' code, default) or "random" (``random_roi_fraction``
                of all RoIs; the paper's text).
            spatial_drop_fraction: share of the H*W positions zeroed by "soft" and "random".
            hard_threshold: threshold of the "hard" strategy, on the min-max normalised map.
            channel_fraction: share of channels (top by ``w``) inverted by "channel" (dropped) and
                "spatial+channel" (spatially masked).
            fg_fraction, bg_fraction, random_roi_fraction: see ``roi_selection``.
            kwargs: the arguments of :class:`StandardROIHeads`.
        """
        super().__init__(**kwargs)
        choices = (
            ("inversion_strategy", inversion_strategy, INVERSION_STRATEGIES),
            ("orientation", orientation, ORIENTATIONS),
            ("roi_selection", roi_selection, ROI_SELECTIONS),
        )
        for name, value, allowed in choices:
            if value not in allowed:
                raise ValueError(f"IAROIHeads: {name}={value!r} is not one of {allowed}")
        fractions = (
            ("spatial_drop_fraction", spatial_drop_fraction),
            ("hard_threshold", hard_threshold),
            ("channel_fraction", channel_fraction),
            ("fg_fraction", fg_fraction),
            ("bg_fraction", bg_fraction),
            ("random_roi_fraction", random_roi_fraction),
        )
        for name, value in fractions:
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"IAROIHeads: {name}={value!r} must lie in [0, 1]")
        self.inversion_strategy = inversion_strategy
        self.orientation = orientation
        self.roi_selection = roi_selection
        self.spatial_drop_fraction = float(spatial_drop_fraction)
        self.hard_threshold = float(hard_threshold)
        self.channel_fraction = float(channel_fraction)
        self.fg_fraction = float(fg_fraction)
        self.bg_fraction = float(bg_fraction)
        self.random_roi_fraction = float(random_roi_fraction)

    # ------------------------------------------------------------------ probe and mask
    def _class_logits(self, box_features: torch.Tensor) -> torch.Tensor:
        """(R, C, H, W) pooled features -> (R, K + 1) class logits of the box head + predictor."""
        return self.box_predictor(self.box_head(box_features))[0]

    def attention_gradient(
        self, box_features: torch.Tensor, gt_classes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`ground_truth_logit_gradient` of this head's box head and predictor."""
        return ground_truth_logit_gradient(self.box_head, self.box_predictor, box_features, gt_classes)

    def inverted_attention(
        self, box_features: torch.Tensor, gt_classes: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The mask multiplied onto the pooled features, 1 for RoIs that are not chosen.

        Args:
            box_features: (R, C, H, W) pooled RoI features.
            gt_classes: (R,) int64 in [0, K]; K is background.
            generator: random generator for the "random" strategy / RoI selection.

        Returns:
            float mask broadcastable to (R, C, H, W), without gradient.
        """
        box_features = box_features.detach()
        grads, logits = self.attention_gradient(box_features, gt_classes)
        attention, weights = gradient_attention(box_features, grads.to(box_features.dtype))
        mask = inverted_attention_mask(
            attention,
            weights,
            strategy=self.inversion_strategy,
            orientation=self.orientation,
            spatial_drop_fraction=self.spatial_drop_fraction,
            channel_fraction=self.channel_fraction,
            hard_threshold=self.hard_threshold,
            generator=generator,
        )
        num_rois = box_features.shape[0]
        if self.roi_selection == "random":
            chosen = select_random(num_rois, self.random_roi_fraction, box_features.device, generator)
        else:
            with torch.no_grad(), eval_mode(self.box_head, self.box_predictor):
                masked_logits = self._class_logits(box_features * mask)
            drop = gt_probability(logits.float(), gt_classes) - gt_probability(masked_logits.float(), gt_classes)
            is_foreground = (gt_classes >= 0) & (gt_classes < self.num_classes)
            chosen = select_top_per_group(drop, is_foreground, self.fg_fraction, self.bg_fraction)
        return torch.where(chosen.view(-1, 1, 1, 1), mask, torch.ones_like(mask))

    # ------------------------------------------------------------------ forward
    def _after_box_pooling(self, box_features: torch.Tensor, proposals: list[Instances]) -> torch.Tensor:
        """Training: ``F * A`` (Eq. 7). Test: the features unchanged, so inference is the parent's.

        Args:
            box_features: (R, C, H, W) pooled features of the sampled proposals.
            proposals: sampled proposals with ``gt_classes`` (K = background), images concatenated.
        """
        if not self.training or box_features.shape[0] == 0:
            return box_features
        gt_classes = torch.cat([p.gt_classes for p in proposals])
        return box_features * self.inverted_attention(box_features, gt_classes)
