"""Preprocessing and postprocessing shared by every meta-architecture (R-CNN, RetinaNet, SSD, ...)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from net_detr2.layers import move_device_like
from net_detr2.modeling.postprocessing import detector_postprocess
from net_detr2.structures import ImageList, Instances
from net_detr2.utils.events import get_event_storage

__all__ = ["DetectorBase"]


class DetectorBase(nn.Module):
    """A detector around a backbone: normalises and pads its ``list[dict]`` inputs, rescales its outputs.

    Args:
        backbone: module with ``size_divisibility`` (and optionally ``padding_constraints``).
        pixel_mean, pixel_std: per-channel normalisation, in the channel order of ``input_format``.
            Kept as non-persistent buffers (not in checkpoints, as in detectron2).
        input_format: "BGR" or "RGB": the channel order the model expects in ``"image"``.
        vis_period: every ``vis_period`` training iterations (0: never) the model puts one training image
            with its ground truth (left) and its current top predictions (right) into the event storage,
            which the TensorBoard writer writes (see `put_training_image`).
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        input_format: str = "BGR",
        vis_period: int = 0,
    ):
        super().__init__()
        self.backbone = backbone
        self.input_format = input_format
        if vis_period < 0:
            raise ValueError(f"{type(self).__name__}: vis_period must be >= 0, got {vis_period}")
        self.vis_period = vis_period
        mean = torch.tensor(list(pixel_mean), dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(list(pixel_std), dtype=torch.float32).view(-1, 1, 1)
        if mean.shape != std.shape:
            raise ValueError(
                f"{type(self).__name__}: pixel_mean {list(pixel_mean)} and pixel_std "
                f"{list(pixel_std)} have different lengths"
            )
        self.register_buffer("pixel_mean", mean, persistent=False)
        self.register_buffer("pixel_std", std, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def _move_to_current_device(self, x: torch.Tensor) -> torch.Tensor:
        return move_device_like(x, self.pixel_mean)

    def preprocess_image(self, batched_inputs: list[dict], key: str = "image") -> ImageList:
        """Normalise ``(image - pixel_mean) / pixel_std`` and zero-pad into a batch (after normalisation)."""
        images = []
        for i, x in enumerate(batched_inputs):
            if key not in x:
                raise KeyError(f"{type(self).__name__}: input {i} has no '{key}' (keys: {sorted(x)})")
            img = self._move_to_current_device(x[key])
            if img.dim() != 3 or img.shape[0] != self.pixel_mean.shape[0]:
                raise ValueError(
                    f"{type(self).__name__}: input {i} '{key}' must be [{self.pixel_mean.shape[0]}, H, W], "
                    f"got {tuple(img.shape)}"
                )
            images.append((img - self.pixel_mean) / self.pixel_std)
        constraints = getattr(self.backbone, "padding_constraints", None)
        return ImageList.from_tensors(images, self.backbone.size_divisibility, padding_constraints=constraints)

    @staticmethod
    def _postprocess(
        instances: list[Instances],
        batched_inputs: list[dict],
        image_sizes: list[tuple[int, int]],
        key: str = "instances",
    ) -> list[dict]:
        """Rescale each image's results to its requested ``height``/``width`` (default: its input size)."""
        out = []
        for res, inp, size in zip(instances, batched_inputs, image_sizes):
            height = inp.get("height", size[0])
            width = inp.get("width", size[1])
            out.append({key: detector_postprocess(res, height, width)})
        return out

    def _get_gt_instances(self, batched_inputs: list[dict]) -> list[Instances]:
        for i, x in enumerate(batched_inputs):
            if "instances" not in x:
                raise KeyError(f"{type(self).__name__}: training input {i} has no 'instances'")
        return [x["instances"].to(self.device) for x in batched_inputs]

    def visualization_due(self) -> bool:
        """True in training at every ``vis_period``-th iteration of the trainer's event storage."""
        return self.training and self.vis_period > 0 and get_event_storage().iter % self.vis_period == 0

    @torch.no_grad()
    def put_training_image(self, batched_inputs: list[dict], predicted_boxes: torch.Tensor, title: str) -> None:
        """Put the first training image into the event storage: its ground-truth boxes on the left, the first
        20 of ``predicted_boxes`` [R, 4] (in the network input's frame, best first) on the right.

        The image is stored as a uint8 [3, H, 2 * W] RGB array under ``title``.
        """
        from net_detr2.utils.visualizer import Visualizer  # drawing is only needed here

        inp = batched_inputs[0]
        image = inp["image"].detach().cpu().permute(1, 2, 0).float().clamp(0, 255).to(torch.uint8).numpy()
        if self.input_format == "BGR":
            image = image[:, :, ::-1]
        gt_boxes = inp["instances"].gt_boxes.tensor.cpu().numpy()
        left = Visualizer(image).overlay_instances(boxes=gt_boxes).get_image()
        right = Visualizer(image).overlay_instances(boxes=predicted_boxes[:20].detach().cpu().numpy()).get_image()
        get_event_storage().put_image(title, np.concatenate([left, right], axis=1).transpose(2, 0, 1))
