"""EFPN (Deng et al., "Extended Feature Pyramid Network for Small Object Detection")."""
from .backbone import ResNetC2Prime, build_resnet_c2prime_backbone
from .distillation import boxes_to_feature_mask, fbb_loss
from .ftt import ESPCNUpsampler, FeatureTextureTransfer, NearestUpsampler, ResidualBlock, SubPixelUpsample
from .neck import EFPN
from .meta_arch import EFPNRCNN, eval_mode
from .roi_heads import EFPNROIHeads, ohem_select, small_roi_mask
from .stages import STAGE2_TRAINABLE_PARAMS, STAGE3_TRAINABLE_PARAMS
from .config import efpn_model_from_fpn, freeze_bottom_up_batchnorm, set_stage
