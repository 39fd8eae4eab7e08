"""A tiny EFPN Faster R-CNN (narrow ResNet-50, 8-channel FPN) built directly, for fast tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from net_detr2.layers import ShapeSpec
from net_detr2.modeling import (
    RPN,
    Box2BoxTransform,
    DefaultAnchorGenerator,
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    LastLevelMaxPool,
    Matcher,
    ROIPooler,
    StandardRPNHead,
)
from net_detr2.structures import Boxes, Instances
from net_detr2_projects.EFPN.efpn import EFPN, EFPNRCNN, EFPNROIHeads, build_resnet_c2prime_backbone

WIDTH = 8
NUM_CLASSES = 3


def tiny_efpn_rcnn(*, small_roi_threshold=24.0, roi_kwargs=None, **model_kwargs) -> EFPNRCNN:
    torch.manual_seed(0)
    bottom_up = build_resnet_c2prime_backbone(
        depth=50,
        stem_out_channels=8,
        res2_out_channels=16,
        width_per_group=4,
        norm="FrozenBN",
        out_features=["res2", "res3", "res4", "res5"],
        freeze_at=2,
    )
    backbone = EFPN(
        bottom_up=bottom_up,
        in_features=["res2", "res3", "res4", "res5"],
        out_channels=WIDTH,
        top_block=LastLevelMaxPool(),
    )
    rpn = RPN(
        in_features=["p2", "p3", "p4", "p5", "p6"],
        head=StandardRPNHead(in_channels=WIDTH, num_anchors=3),
        anchor_generator=DefaultAnchorGenerator(
            sizes=[[8], [16], [32], [64], [128]], aspect_ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64]
        ),
        anchor_matcher=Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=True),
        box2box_transform=Box2BoxTransform((1.0, 1.0, 1.0, 1.0)),
        batch_size_per_image=64,
        positive_fraction=0.5,
        pre_nms_topk=(200, 100),
        post_nms_topk=(100, 50),
    )
    roi_kwargs = dict(roi_kwargs or {})
    roi_heads = EFPNROIHeads(
        num_classes=NUM_CLASSES,
        batch_size_per_image=32,
        positive_fraction=0.25,
        proposal_matcher=Matcher([0.5], [0, 1], allow_low_quality_matches=False),
        box_in_features=["p2", "p3", "p4", "p5"],
        box_pooler=ROIPooler(7, (1 / 4, 1 / 8, 1 / 16, 1 / 32), 0, "ROIAlignV2"),
        box_head=FastRCNNConvFCHead(ShapeSpec(channels=WIDTH, height=7, width=7), conv_dims=[], fc_dims=[16, 16]),
        box_predictor=FastRCNNOutputLayers(
            ShapeSpec(channels=16),
            box2box_transform=Box2BoxTransform((10, 10, 5, 5)),
            num_classes=NUM_CLASSES,
            test_score_thresh=0.0,
        ),
        p2_prime_pooler=ROIPooler(7, (1 / 2,), 0, "ROIAlignV2"),
        small_roi_threshold=small_roi_threshold,
        **roi_kwargs,
    )
    return EFPNRCNN(
        backbone=backbone,
        proposal_generator=rpn,
        roi_heads=roi_heads,
        pixel_mean=[103.53, 116.28, 123.675],
        pixel_std=[57.375, 57.12, 58.395],
        **model_kwargs,
    )


def tiny_inputs(with_2x=True, seed=0):
    """Two training inputs: 'image_2x' at twice the size of 'image' (here its 2x2 average pool), boxes in the
    'image' frame."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for (h, w), boxes, classes in [
        ((64, 64), [[4.0, 6.0, 14.0, 15.0], [20.0, 16.0, 60.0, 58.0]], [0, 2]),
        ((48, 64), [[30.0, 10.0, 41.0, 22.0]], [1]),
    ]:
        big = torch.rand(3, 2 * h, 2 * w, generator=g) * 255
        d = {"image": F.avg_pool2d(big[None], 2)[0], "height": h, "width": w}
        if with_2x:
            d["image_2x"] = big
        inst = Instances((h, w))
        inst.gt_boxes = Boxes(torch.tensor(boxes))
        inst.gt_classes = torch.tensor(classes, dtype=torch.int64)
        d["instances"] = inst
        out.append(d)
    return out
