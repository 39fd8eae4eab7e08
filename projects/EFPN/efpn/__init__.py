"""EFPN (Deng et al., "Extended Feature Pyramid Network for Small Object Detection") on net_detr2.

Importing the package registers `EFPNRCNN` (META_ARCH_REGISTRY) and `EFPNROIHeads` (ROI_HEADS_REGISTRY).
"""

from __future__ import annotations

from .backbone import ResNetC2Prime, build_resnet_c2prime_backbone
from .config import (
    SINGLE_LAYER_STRIDES,
    detect_on_single_layer,
    efpn_model_from_fpn,
    freeze_bottom_up_batchnorm,
    set_stage,
    use_teacher_p2,
)
from .distillation import boxes_to_feature_mask, fbb_loss
from .ftt import ESPCNUpsampler, FeatureTextureTransfer, NearestUpsampler, ResidualBlock, SubPixelUpsample
from .mapper import TeacherImageMapper, scale_transforms
from .meta_arch import EFPNRCNN, eval_mode
from .neck import EFPN
from .roi_heads import EFPNROIHeads, ohem_select, small_roi_mask
from .stages import STAGE2_TRAINABLE_PARAMS, STAGE3_TRAINABLE_PARAMS
from .tt100k import LABEL_SETS, EvaluatedClassesOnly, tt100k_protocol

__all__ = [k for k in globals().keys() if not k.startswith("_")]
