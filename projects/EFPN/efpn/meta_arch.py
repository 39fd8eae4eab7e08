"""`EFPNRCNN`: Faster R-CNN on the extended pyramid, with cross-resolution distillation in training.

Training can produce two groups of losses, each switchable (the three-stage schedule uses them):

* distillation (stage 2): the *teacher* is the same backbone + FPN weights, run in eval mode and
  without gradient on ``"image_2x"`` (the picture at twice the scale); it gives P2^2x and P3^2x.
  The student sees ``"image"`` (the 2x2 average pool of ``"image_2x"``, made by the data mapper).
  ``loss_distill_p3 = L_fbb(P3', P3^2x)``, ``loss_distill_p2 = L_fbb(P2', P2^2x)`` (Eq. 5).
* detection (stage 1 / 3): RPN and ROI-head losses as `GeneralizedRCNN`.

Inference is `GeneralizedRCNN.inference` (the ROI heads merge the P2' and base detections).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from net_detr2.modeling.meta_arch.rcnn import GeneralizedRCNN
from net_detr2.modeling.registry import META_ARCH_REGISTRY
from net_detr2.structures import ImageList, Instances
from net_detr2.utils.eval_mode import eval_mode

from .distillation import boxes_to_feature_mask, fbb_loss

__all__ = ["EFPNRCNN", "eval_mode"]


@META_ARCH_REGISTRY.register()
class EFPNRCNN(GeneralizedRCNN):
    """Faster R-CNN with an `EFPN` backbone and `EFPNROIHeads`.

    Args:
        distillation: add the cross-resolution distillation losses (needs "image_2x" in every input).
        distill_p2: loss on the extended level P2' (Table IV, "loss on the extended level").
        distill_p3: loss on the FTT output P3' (Table IV, "loss on feature texture transfer").
        fbb_lambda: lambda of the positive-patch term (0 = global L1 only, Table IV row 1).
        detection_losses: add the ROI-head losses (and the RPN's, see `train_rpn`).
        train_rpn: include the RPN losses when `detection_losses` (False in stage 3, where the RPN is frozen).
        teacher_image_key: input key of the 2x image.
        backbone (an `EFPN`), proposal_generator, roi_heads, pixel_mean, pixel_std, input_format,
            vis_period: as for `GeneralizedRCNN`.
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
        distillation: bool = False,
        distill_p2: bool = True,
        distill_p3: bool = True,
        fbb_lambda: float = 1.0,
        detection_losses: bool = True,
        train_rpn: bool = True,
        teacher_image_key: str = "image_2x",
    ):
        super().__init__(
            backbone=backbone,
            proposal_generator=proposal_generator,
            roi_heads=roi_heads,
            pixel_mean=pixel_mean,
            pixel_std=pixel_std,
            input_format=input_format,
            vis_period=vis_period,
        )
        if not hasattr(self.backbone, "forward_base"):
            raise TypeError(
                f"EFPNRCNN: the backbone must be an EFPN (with forward_base), got {type(self.backbone).__name__}"
            )
        if distillation and not (distill_p2 or distill_p3):
            raise ValueError("EFPNRCNN: distillation is on but distill_p2 and distill_p3 are both False")
        if not (distillation or detection_losses):
            raise ValueError("EFPNRCNN: distillation and detection_losses are both False: nothing to train")
        if fbb_lambda < 0:
            raise ValueError(f"EFPNRCNN: fbb_lambda must be >= 0, got {fbb_lambda}")
        self.distillation = distillation
        self.distill_p2 = distill_p2
        self.distill_p3 = distill_p3
        self.fbb_lambda = fbb_lambda
        self.detection_losses = detection_losses
        self.train_rpn = train_rpn
        self.teacher_image_key = teacher_image_key

    def forward(self, batched_inputs: list[dict]):
        if not self.training:
            return self.inference(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        gt_instances = self._get_gt_instances(batched_inputs)
        features = self.backbone(images.tensor)
        losses: dict[str, torch.Tensor] = {}
        if self.distillation:
            losses.update(self.distillation_losses(batched_inputs, images, features, gt_instances))
        if self.detection_losses:
            proposals, proposal_losses = self._get_proposals(images, features, batched_inputs, gt_instances)
            if self.visualization_due():
                self.visualize_training(batched_inputs, proposals)
            _, detector_losses = self.roi_heads(images, features, proposals, gt_instances)
            losses.update(detector_losses)
            if self.train_rpn:
                losses.update(proposal_losses)
        return losses

    def teacher_features(self, batched_inputs: list[dict], student_images: ImageList) -> dict[str, torch.Tensor]:
        """The teacher's P2^2x / P3^2x (and inner maps as "p2_inner"/"p3_inner") on the 2x images.

        The 2x batch is padded to exactly twice the student's padded size, so every teacher map
        lines up cell for cell with the student's map of half its stride.
        """
        key = self.teacher_image_key
        if key not in batched_inputs[0]:
            raise KeyError(
                f"EFPNRCNN: distillation needs '{key}' in every input (use DatasetMapper(..., teacher_scale=2.0)); "
                f"got keys {sorted(batched_inputs[0])}"
            )
        images_2x = self.preprocess_image(batched_inputs, key=key)
        for i, ((h, w), (h2, w2)) in enumerate(zip(student_images.image_sizes, images_2x.image_sizes)):
            if (h2, w2) != (2 * h, 2 * w):
                raise ValueError(f"EFPNRCNN: input {i} '{key}' is {h2}x{w2}, expected exactly twice 'image' ({h}x{w})")
        target_h, target_w = 2 * student_images.tensor.shape[-2], 2 * student_images.tensor.shape[-1]
        tensor = images_2x.tensor
        if tensor.shape[-2] > target_h or tensor.shape[-1] > target_w:
            raise ValueError(f"EFPNRCNN: padded '{key}' batch {tuple(tensor.shape)} exceeds 2x the student batch")
        # zero = the normalised padding value ImageList uses
        tensor = F.pad(tensor, (0, target_w - tensor.shape[-1], 0, target_h - tensor.shape[-2]))
        with torch.no_grad(), eval_mode(self.backbone):
            pyramid, inner = self.backbone.forward_base(tensor)
        return {"p2": pyramid["p2"], "p3": pyramid["p3"], "p2_inner": inner["p2"], "p3_inner": inner["p3"]}

    def distillation_losses(
        self,
        batched_inputs: list[dict],
        images: ImageList,
        features: dict[str, torch.Tensor],
        gt_instances: list[Instances],
    ) -> dict[str, torch.Tensor]:
        """{"loss_distill_p2": L_fbb(P2', P2^2x), "loss_distill_p3": L_fbb(P3', P3^2x)} (the enabled ones).

        With ``ftt_input="inner"`` the FTT output is compared with the teacher's inner P3 map, the
        quantity it stands for in the top-down pathway.
        """
        teacher = self.teacher_features(batched_inputs, images)
        gt_boxes = [inst.gt_boxes.tensor for inst in gt_instances]
        strides = self.backbone._out_feature_strides
        p3_target = teacher["p3_inner"] if getattr(self.backbone, "ftt_input", "output") == "inner" else teacher["p3"]
        pairs = []
        if self.distill_p2:
            pairs.append(("loss_distill_p2", features["p2_prime"], teacher["p2"], strides["p2_prime"]))
        if self.distill_p3:
            pairs.append(("loss_distill_p3", features["p3_prime"], p3_target, strides["p3_prime"]))
        losses = {}
        for name, student, target, stride in pairs:
            mask = None
            if self.fbb_lambda > 0:
                mask = boxes_to_feature_mask(gt_boxes, stride, student.shape[-2:])
            losses[name] = fbb_loss(student, target, mask, self.fbb_lambda)
        return losses
