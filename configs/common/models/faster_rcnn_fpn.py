"""Faster R-CNN R50-FPN model tree with detectron2's defaults (COCO: 80 classes, ImageNet-style FrozenBN ResNet).

Edit it in experiment configs, e.g. ``model.roi_heads.num_classes = 20``: each repeated value is set once
and the nodes that repeat it interpolate it (OmegaConf ``${..}``): the class count
(``roi_heads.num_classes``), the FPN width (``backbone.out_channels``) and the pooled size
(``roi_heads.box_pooler.output_size``).
"""

from net_detr2.config import LazyCall as L
from net_detr2.layers import ShapeSpec
from net_detr2.modeling import (
    FPN,
    RPN,
    Box2BoxTransform,
    DefaultAnchorGenerator,
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    GeneralizedRCNN,
    LastLevelMaxPool,
    Matcher,
    ROIPooler,
    StandardROIHeads,
    StandardRPNHead,
    build_resnet_backbone,
)

model = L(GeneralizedRCNN)(
    backbone=L(FPN)(
        bottom_up=L(build_resnet_backbone)(
            depth=50,
            norm="FrozenBN",
            stem_out_channels=64,
            res2_out_channels=256,
            num_groups=1,
            width_per_group=64,
            stride_in_1x1=True,
            out_features=["res2", "res3", "res4", "res5"],
            freeze_at=2,
        ),
        in_features=["res2", "res3", "res4", "res5"],
        out_channels=256,
        top_block=L(LastLevelMaxPool)(),
    ),
    proposal_generator=L(RPN)(
        in_features=["p2", "p3", "p4", "p5", "p6"],
        head=L(StandardRPNHead)(in_channels="${...backbone.out_channels}", num_anchors=3),
        anchor_generator=L(DefaultAnchorGenerator)(
            sizes=[[32], [64], [128], [256], [512]],
            aspect_ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64],
            offset=0.0,
        ),
        anchor_matcher=L(Matcher)(thresholds=[0.3, 0.7], labels=[0, -1, 1], allow_low_quality_matches=True),
        box2box_transform=L(Box2BoxTransform)(weights=[1.0, 1.0, 1.0, 1.0]),
        batch_size_per_image=256,
        positive_fraction=0.5,
        pre_nms_topk=(2000, 1000),
        post_nms_topk=(1000, 1000),
        nms_thresh=0.7,
    ),
    roi_heads=L(StandardROIHeads)(
        num_classes=80,
        batch_size_per_image=512,
        positive_fraction=0.25,
        proposal_matcher=L(Matcher)(thresholds=[0.5], labels=[0, 1], allow_low_quality_matches=False),
        box_in_features=["p2", "p3", "p4", "p5"],
        box_pooler=L(ROIPooler)(
            output_size=7,
            scales=(1.0 / 4, 1.0 / 8, 1.0 / 16, 1.0 / 32),
            sampling_ratio=0,
            pooler_type="ROIAlignV2",
        ),
        box_head=L(FastRCNNConvFCHead)(
            input_shape=ShapeSpec(
                channels="${....backbone.out_channels}",
                height="${...box_pooler.output_size}",
                width="${...box_pooler.output_size}",
            ),
            conv_dims=[],
            fc_dims=[1024, 1024],
        ),
        box_predictor=L(FastRCNNOutputLayers)(
            input_shape=ShapeSpec(channels=1024),
            test_score_thresh=0.05,
            box2box_transform=L(Box2BoxTransform)(weights=(10, 10, 5, 5)),
            num_classes="${..num_classes}",
        ),
    ),
    pixel_mean=[103.530, 116.280, 123.675],
    pixel_std=[1.0, 1.0, 1.0],
    input_format="BGR",
)
