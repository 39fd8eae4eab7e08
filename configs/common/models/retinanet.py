"""RetinaNet R50-FPN model tree with detectron2's defaults (COCO: 80 classes).

P3-P5 from the FPN, P6 = 3x3/2 conv on C5, P7 = 3x3/2 conv on ReLU(P6); 9 anchors per location.
The class count (``model.num_classes``) and the FPN width (``model.backbone.out_channels``) are set once;
the nodes that repeat them interpolate them (OmegaConf ``${..}``).
"""

from net_detr2.config import LazyCall as L
from net_detr2.layers import ShapeSpec
from net_detr2.modeling import (
    FPN,
    Box2BoxTransform,
    DefaultAnchorGenerator,
    LastLevelP6P7,
    Matcher,
    RetinaNet,
    RetinaNetHead,
    build_resnet_backbone,
)

model = L(RetinaNet)(
    backbone=L(FPN)(
        bottom_up=L(build_resnet_backbone)(
            depth=50,
            norm="FrozenBN",
            stem_out_channels=64,
            res2_out_channels=256,
            num_groups=1,
            width_per_group=64,
            stride_in_1x1=True,
            out_features=["res3", "res4", "res5"],
            freeze_at=2,
        ),
        in_features=["res3", "res4", "res5"],
        out_channels=256,
        top_block=L(LastLevelP6P7)(in_channels=2048, out_channels="${..out_channels}", in_feature="res5"),
    ),
    head=L(RetinaNetHead)(
        # one ShapeSpec per level p3..p7
        input_shape=[ShapeSpec(channels="${....backbone.out_channels}")] * 5,
        num_classes="${..num_classes}",
        num_anchors=9,
        conv_dims=[256, 256, 256, 256],
        prior_prob=0.01,
    ),
    head_in_features=["p3", "p4", "p5", "p6", "p7"],
    anchor_generator=L(DefaultAnchorGenerator)(
        # three octave scales per level: x * 2**(k/3)
        sizes=[[x, x * 2 ** (1.0 / 3), x * 2 ** (2.0 / 3)] for x in [32, 64, 128, 256, 512]],
        aspect_ratios=[0.5, 1.0, 2.0],
        strides=[8, 16, 32, 64, 128],
        offset=0.0,
    ),
    box2box_transform=L(Box2BoxTransform)(weights=[1.0, 1.0, 1.0, 1.0]),
    anchor_matcher=L(Matcher)(thresholds=[0.4, 0.5], labels=[0, -1, 1], allow_low_quality_matches=True),
    num_classes=80,
    focal_loss_alpha=0.25,
    focal_loss_gamma=2.0,
    smooth_l1_beta=0.1,
    box_reg_loss_type="smooth_l1",
    test_score_thresh=0.05,
    test_topk_candidates=1000,
    test_nms_thresh=0.5,
    max_detections_per_image=100,
    pixel_mean=[103.530, 116.280, 123.675],
    pixel_std=[1.0, 1.0, 1.0],
    input_format="BGR",
)
