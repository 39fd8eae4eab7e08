"""`DenseDetector`: base of one-stage detectors that predict at every anchor of every level."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from net_detr2.structures import Boxes, ImageList, Instances
from net_detr2.utils.amp import to_float32

from .base import DetectorBase

__all__ = ["DenseDetector", "permute_to_N_HWA_K"]


def permute_to_N_HWA_K(tensor: torch.Tensor, K: int) -> torch.Tensor:
    """[N, A*K, H, W] head output -> [N, H*W*A, K], matching the anchor order (y, x, a)."""
    if tensor.dim() != 4:
        raise ValueError(f"permute_to_N_HWA_K: expected [N, A*K, H, W], got {tuple(tensor.shape)}")
    n, _, h, w = tensor.shape
    return tensor.view(n, -1, K, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, K)


class DenseDetector(DetectorBase):
    """backbone -> features of ``head_in_features`` -> head -> per level predictions.

    Subclasses implement `forward_training` and `forward_inference`; `extract_features` may be
    overridden to transform the features between backbone and head.

    Args:
        backbone, pixel_mean, pixel_std, input_format, vis_period, channels_last: see `DetectorBase`; the right
            half of the training picture shows the detections (`forward_inference`) of the training image.
        head: module taking the list of features and returning a list (one entry per prediction kind)
            of per-level tensors.
        head_in_features: feature names fed to the head, finest first.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        head: nn.Module,
        head_in_features: Sequence[str],
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
        self.head = head
        self.head_in_features = list(head_in_features)

    def forward(self, batched_inputs: list[dict]):
        images = self.preprocess_image(batched_inputs)
        # checked before the network runs, so that a missing field is reported as such
        gt_instances = self._get_gt_instances(batched_inputs) if self.training else None
        features = self.extract_features(images.tensor)
        # fp32 under autocast: assignment, losses, decoding and NMS read the predictions
        predictions = to_float32(self.head(features))
        if self.training:
            losses = self.forward_training(images, features, predictions, gt_instances)
            if self.visualization_due():
                self.visualize_training(batched_inputs, images, features, predictions)
            return losses
        results = self.forward_inference(images, features, predictions)
        return self._postprocess(results, batched_inputs, images.image_sizes)

    @torch.no_grad()
    def visualize_training(self, batched_inputs: list[dict], images: ImageList, features, predictions) -> None:
        """The first training image: ground truth (left) and its top 20 detections (right), into the event
        storage."""
        results = self.forward_inference(images, features, predictions)
        title = "Left: GT bounding boxes;  Right: Predicted boxes"
        self.put_training_image(batched_inputs, results[0].pred_boxes.tensor, title)

    def extract_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images [N, C, H, W] -> the ``head_in_features`` maps, finest first.

        The place to refine the pyramid between backbone and head (NETNet's neck does).
        """
        features = self.backbone(images)
        return [features[f] for f in self.head_in_features]

    def forward_training(
        self, images: ImageList, features: list[torch.Tensor], predictions, gt_instances: list[Instances]
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward_inference(self, images: ImageList, features: list[torch.Tensor], predictions) -> list[Instances]:
        raise NotImplementedError

    @staticmethod
    def _transpose_dense_predictions(predictions: list[list[torch.Tensor]], dims_per_anchor: list[int]):
        """Each kind's per level [N, A*K, H, W] -> [N, H*W*A, K] (K from ``dims_per_anchor``)."""
        if len(predictions) != len(dims_per_anchor):
            raise ValueError(f"{len(predictions)} prediction kinds but {len(dims_per_anchor)} dims_per_anchor")
        return [[permute_to_N_HWA_K(x, k) for x in pred] for pred, k in zip(predictions, dims_per_anchor)]

    def decode_per_level_predictions(
        self,
        anchors: Boxes,
        pred_scores: torch.Tensor,
        pred_deltas: torch.Tensor,
        score_thresh: float,
        topk_candidates: int,
        image_size: tuple[int, int],
    ) -> Instances:
        """One level of one image: (anchor, class) pairs scoring above ``score_thresh``, best ``topk_candidates``.

        Args:
            anchors: Boxes [R, 4]; pred_scores: [R, K] probabilities; pred_deltas: [R, 4].
        """
        # one pass over the [R, K] scores (a 1-D nonzero; boolean indexing would be a second one)
        flat = pred_scores.flatten()
        candidates = (flat > score_thresh).nonzero().squeeze(1)  # [M] indices of (anchor, class) pairs
        n = candidates.size(0)
        # while tracing (export) n is a tensor: clamp keeps k data-dependent instead of freezing the traced value
        k = torch.clamp(n, max=topk_candidates) if isinstance(n, torch.Tensor) else min(topk_candidates, n)
        scores, idx = flat[candidates].topk(k)
        candidates = candidates[idx]
        num_classes = pred_scores.shape[1]
        anchor_idx, class_idx = candidates // num_classes, candidates % num_classes
        boxes = self.box2box_transform.apply_deltas(pred_deltas[anchor_idx], anchors.tensor[anchor_idx])
        return Instances(image_size, pred_boxes=Boxes(boxes), scores=scores, pred_classes=class_idx)

    def decode_multi_level_predictions(
        self,
        anchors: list[Boxes],
        pred_scores: list[torch.Tensor],
        pred_deltas: list[torch.Tensor],
        score_thresh: float,
        topk_candidates: int,
        image_size: tuple[int, int],
    ) -> Instances:
        """All levels of one image, concatenated (no NMS yet)."""
        per_level = [
            self.decode_per_level_predictions(a, s, d, score_thresh, topk_candidates, image_size)
            for a, s, d in zip(anchors, pred_scores, pred_deltas)
        ]
        return Instances.cat(per_level)
