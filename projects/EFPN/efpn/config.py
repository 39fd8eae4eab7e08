"""Turn a Faster R-CNN FPN LazyConfig model tree into the EFPN one (same widths, same checkpoint keys)."""

from __future__ import annotations

import copy

from omegaconf import DictConfig, ListConfig

from net_detr2.config import LazyCall as L
from net_detr2.data import DatasetMapper
from net_detr2.modeling import ResNet, ROIPooler, build_resnet_backbone

from .backbone import ResNetC2Prime, build_resnet_c2prime_backbone
from .mapper import TeacherImageMapper
from .meta_arch import EFPNRCNN
from .neck import EFPN
from .roi_heads import EFPNROIHeads

__all__ = [
    "SINGLE_LAYER_STRIDES",
    "detect_on_single_layer",
    "efpn_model_from_fpn",
    "freeze_bottom_up_batchnorm",
    "set_stage",
    "use_teacher_p2",
]

_BOTTOM_UP = {build_resnet_backbone: build_resnet_c2prime_backbone, ResNet: ResNetC2Prime}


def efpn_model_from_fpn(model: DictConfig, *, small_roi_threshold: float = 112.0) -> DictConfig:
    """A copy of ``model`` (a ``L(GeneralizedRCNN)`` with ``L(FPN)`` on a ResNet) made into EFPN.

    Backbone -> `EFPN` on a `ResNetC2Prime`, ROI heads -> `EFPNROIHeads` with a P2' pooler like the
    base one at scale 1/2, meta-architecture -> `EFPNRCNN` (detection losses only; the stage
    configs switch distillation on). Every other value (widths, RPN, matcher, ...) is kept.
    """
    model = copy.deepcopy(model)
    bottom_up = model.backbone.bottom_up
    target = bottom_up._target_
    if target not in _BOTTOM_UP:
        raise ValueError(
            f"efpn_model_from_fpn: model.backbone.bottom_up._target_ = {target!r}; expected "
            "build_resnet_backbone or ResNet"
        )
    bottom_up._target_ = _BOTTOM_UP[target]
    model.backbone._target_ = EFPN
    model.backbone.sr_module = "ftt"
    model.backbone.ftt_input = "output"

    heads = model.roi_heads
    heads._target_ = EFPNROIHeads
    pooler = heads.box_pooler
    heads.p2_prime_pooler = L(ROIPooler)(
        output_size=pooler.output_size,
        scales=(0.5,),
        sampling_ratio=pooler.sampling_ratio,
        pooler_type=pooler.pooler_type,
    )
    heads.small_roi_threshold = small_roi_threshold
    heads.duplicate_small_rois = False
    heads.train_base_head = True
    heads.train_p2_head = True
    heads.p2_ohem = False

    model._target_ = EFPNRCNN
    model.distillation = False
    model.distill_p2 = True
    model.distill_p3 = True
    model.fbb_lambda = 1.0
    model.detection_losses = True
    model.train_rpn = True
    return model


_TRAINABLE_NORMS = ("BN", "SyncBN", "naiveSyncBN")


def freeze_bottom_up_batchnorm(model: DictConfig) -> int:
    """In place: every ``norm="BN"`` (or SyncBN) under ``model.backbone.bottom_up`` becomes "FrozenBN".

    Stages 2 and 3 freeze the backbone; a trainable BN would still move its running statistics in
    train mode and normalise the student by batch statistics but the (eval-mode) teacher by the
    running ones. FrozenBN loads the BN checkpoint entries unchanged and computes eval-mode BN.
    Returns the number of nodes changed.
    """

    def walk(node) -> int:
        changed = 0
        if isinstance(node, DictConfig):
            for key in list(node.keys()):
                value = node[key]
                if key == "norm" and isinstance(value, str) and value in _TRAINABLE_NORMS:
                    node[key] = "FrozenBN"
                    changed += 1
                else:
                    changed += walk(value)
        elif isinstance(node, (list, tuple, ListConfig)):
            for item in node:
                changed += walk(item)
        return changed

    return walk(model.backbone.bottom_up)


def set_stage(stage: int, *, model: DictConfig, dataloader: DictConfig, train: DictConfig) -> None:
    """In place: the losses, data and trainable parameters of stage 2 (distillation) or 3 (P2' head).

    Stage 2: distillation losses only (``L_fbb`` on P3' and P2'), the training mapper becomes a
    `TeacherImageMapper` (adds ``"image_2x"``, the original at twice the training scale), only the
    extension trains. Stage 3: only the P2' head's losses, with OHEM, only that head trains, and the
    training mapper is the plain `DatasetMapper` again. In both, BN in the bottom-up network is frozen
    (see `freeze_bottom_up_batchnorm`).
    """
    from .stages import STAGE2_TRAINABLE_PARAMS, STAGE3_TRAINABLE_PARAMS

    if stage not in (2, 3):
        raise ValueError(f"set_stage: stage must be 2 or 3 (stage 1 is the plain FPN config), got {stage}")
    freeze_bottom_up_batchnorm(model)
    if stage == 2:
        model.distillation = True
        model.detection_losses = False
        _teacher_image_mappers(dataloader, test=False)
        train.trainable_params = list(STAGE2_TRAINABLE_PARAMS)
    elif stage == 3:
        model.distillation = False
        model.detection_losses = True
        model.train_rpn = False
        model.roi_heads.train_base_head = False
        model.roi_heads.train_p2_head = True
        model.roi_heads.p2_ohem = True
        model.roi_heads.ohem_positive_fraction = 0.25
        dataloader.train.mapper._target_ = DatasetMapper
        dataloader.train.mapper.pop("teacher_scale", None)
        train.trainable_params = list(STAGE3_TRAINABLE_PARAMS)


def _teacher_image_mappers(dataloader: DictConfig, *, test: bool) -> None:
    nodes = [dataloader.train.mapper] + ([dataloader.test.mapper] if test else [])
    for node in nodes:
        node._target_ = TeacherImageMapper
        node.teacher_scale = 2


def use_teacher_p2(*, model: DictConfig, dataloader: DictConfig) -> None:
    """In place: Table III's "FPN-1x + P2-2x" oracle: the extended level P2' is the teacher's P2 on the image
    at 2x (in training and at test, whose mapper then also makes ``"image_2x"``); the rest is EFPN's."""
    model.teacher_outputs = {"p2": "p2_prime"}
    _teacher_image_mappers(dataloader, test=True)


# Table V's detection layers -> their stride in the 1x input's pixels (the teacher's P3 is at stride 8 of the
# 2x image, so 4 of the 1x one)
SINGLE_LAYER_STRIDES = {"p3": 8, "p3_2x": 4, "p3_prime": 4}


def detect_on_single_layer(*, model: DictConfig, dataloader: DictConfig, layer: str) -> None:
    """In place: Table V: at test time every RoI is pooled from one map, ``layer`` = "p3" (FPN at 1x),
    "p3_2x" (the teacher's P3 on the 2x image) or "p3_prime" (FTT's output), through the base head."""
    if layer not in SINGLE_LAYER_STRIDES:
        raise ValueError(f"detect_on_single_layer: layer={layer!r} is not one of {sorted(SINGLE_LAYER_STRIDES)}")
    heads = model.roi_heads
    pooler = heads.box_pooler
    heads.detection_layer = layer
    heads.detection_layer_pooler = L(ROIPooler)(
        output_size=pooler.output_size,
        scales=(1.0 / SINGLE_LAYER_STRIDES[layer],),
        sampling_ratio=pooler.sampling_ratio,
        pooler_type=pooler.pooler_type,
    )
    if layer == "p3_2x":
        model.teacher_outputs = {"p3": "p3_2x"}
        _teacher_image_mappers(dataloader, test=True)
