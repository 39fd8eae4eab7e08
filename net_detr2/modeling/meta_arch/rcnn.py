"""R-CNN meta-architectures: backbone -> proposal generator -> ROI heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from net_detr2.modeling.registry import META_ARCH_REGISTRY
from net_detr2.structures import ImageList, Instances

from .base import DetectorBase

__all__ = ["GeneralizedRCNN", "ProposalNetwork"]


@META_ARCH_REGISTRY.register()
class GeneralizedRCNN(DetectorBase):
    """Faster R-CNN style detector.

    Args:
        backbone: image -> dict of features.
        proposal_generator: e.g. RPN (None: proposals come from the inputs' ``"proposals"``).
        roi_heads: e.g. StandardROIHeads.
        pixel_mean, pixel_std, input_format, channels_last: see `DetectorBase`.
        vis_period: see `DetectorBase`; the right half shows the top proposals.

    Input: ``list[dict]`` with "image" [C, H, W], optional "height"/"width", "instances" in training.
    Output: training -> dict of losses; eval -> ``[{"instances": Instances}]`` in each height/width frame.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        proposal_generator: nn.Module | None,
        roi_heads: nn.Module,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        input_format: str = "BGR",
        vis_period: int = 0,
        channels_last: bool = False,
    ):
        super().__init__(
            backbone=backbone,
            pixel_mean=pixel_mean,
            pixel_std=pixel_std,
            input_format=input_format,
            vis_period=vis_period,
            channels_last=channels_last,
        )
        self.proposal_generator = proposal_generator
        self.roi_heads = roi_heads

    def forward(self, batched_inputs: list[dict]):
        if not self.training:
            return self.inference(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        gt_instances = self._get_gt_instances(batched_inputs)
        features = self.extract_features(batched_inputs, images)
        proposals, proposal_losses = self._get_proposals(images, features, batched_inputs, gt_instances)
        if self.visualization_due():
            self.visualize_training(batched_inputs, proposals)
        _, detector_losses = self.roi_heads(images, features, proposals, gt_instances)
        return {**detector_losses, **proposal_losses}

    def extract_features(self, batched_inputs: list[dict], images: ImageList) -> dict[str, torch.Tensor]:
        """The feature maps the proposal generator and ROI heads see, in training and inference: the backbone
        on ``images`` here. A hook for detectors whose features also depend on other inputs (EFPN's teacher)."""
        return self.backbone(images.tensor)

    def visualize_training(self, batched_inputs: list[dict], proposals: list[Instances]) -> None:
        """The first training image: ground truth (left) and its top 20 proposals (right), into the event storage."""
        title = "Left: GT bounding boxes;  Right: Predicted proposals"
        self.put_training_image(batched_inputs, proposals[0].proposal_boxes.tensor, title)

    def _get_proposals(self, images, features, batched_inputs, gt_instances=None):
        if self.proposal_generator is not None:
            return self.proposal_generator(images, features, gt_instances)
        if "proposals" not in batched_inputs[0]:
            raise KeyError("GeneralizedRCNN without a proposal_generator needs 'proposals' in every input")
        return [x["proposals"].to(self.device) for x in batched_inputs], {}

    def inference(
        self, batched_inputs: list[dict], detected_instances: list[Instances] | None = None, do_postprocess: bool = True
    ):
        """Detections per image; with ``do_postprocess=False`` they stay in the network's input frame."""
        if self.training:
            raise RuntimeError("GeneralizedRCNN.inference called in training mode")
        images = self.preprocess_image(batched_inputs)
        features = self.extract_features(batched_inputs, images)
        if detected_instances is None:
            proposals, _ = self._get_proposals(images, features, batched_inputs)
            results, _ = self.roi_heads(images, features, proposals, None)
        else:
            results = self.roi_heads.forward_with_given_boxes(features, [x.to(self.device) for x in detected_instances])
        if do_postprocess:
            return self._postprocess(results, batched_inputs, images.image_sizes)
        return results


@META_ARCH_REGISTRY.register()
class ProposalNetwork(DetectorBase):
    """Backbone + proposal generator only. Eval output: ``[{"proposals": Instances}]`` per image."""

    def __init__(
        self,
        *,
        backbone: nn.Module,
        proposal_generator: nn.Module,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        input_format: str = "BGR",
        channels_last: bool = False,
    ):
        super().__init__(
            backbone=backbone,
            pixel_mean=pixel_mean,
            pixel_std=pixel_std,
            input_format=input_format,
            channels_last=channels_last,
        )
        self.proposal_generator = proposal_generator

    def forward(self, batched_inputs: list[dict]):
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        gt = self._get_gt_instances(batched_inputs) if self.training else None
        proposals, losses = self.proposal_generator(images, features, gt)
        if self.training:
            return losses
        return self._postprocess(proposals, batched_inputs, images.image_sizes, key="proposals")
