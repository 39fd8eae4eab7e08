"""Models: backbones, anchors, box coders, matchers, proposal generators, ROI heads and meta-architectures."""

from __future__ import annotations

from .anchor_generator import (
    ANCHOR_GENERATOR_REGISTRY,
    BufferList,
    DefaultAnchorGenerator,
    DefaultBoxGenerator,
    ssd_default_box_sizes,
)
from .backbone import (
    FPN,
    VGG16,
    Backbone,
    BasicBlock,
    BasicStem,
    BottleneckBlock,
    CNNBlockBase,
    LastLevelMaxPool,
    LastLevelP6P7,
    ResNet,
    SSDBackbone,
    build_backbone,
    build_resnet_backbone,
    build_resnet_fpn_backbone,
    build_retinanet_resnet_fpn_backbone,
    make_stage,
    ssd_extra_layers,
)
from .box_regression import Box2BoxTransform, Box2BoxTransformLinear
from .build import build_model
from .matcher import Matcher, match_default_boxes, matched_classes
from .meta_arch import SSD, DenseDetector, DetectorBase, GeneralizedRCNN, ProposalNetwork, RetinaNet, RetinaNetHead
from .poolers import ROIPooler, assign_boxes_to_levels
from .postprocessing import detector_postprocess
from .proposal_generator import RPN, RPN_HEAD_REGISTRY, StandardRPNHead, find_top_rpn_proposals
from .registry import BACKBONE_REGISTRY, META_ARCH_REGISTRY, PROPOSAL_GENERATOR_REGISTRY, ROI_HEADS_REGISTRY
from .roi_heads import (
    ROI_BOX_HEAD_REGISTRY,
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    ROIHeads,
    StandardROIHeads,
    fast_rcnn_inference,
)
from .sampling import subsample_labels

__all__ = [k for k in globals().keys() if not k.startswith("_")]
