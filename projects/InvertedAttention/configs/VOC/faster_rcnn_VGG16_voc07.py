"""Baseline of Table 4, "Faster [15] 07 VGG16": single-level Faster R-CNN on VGG-16, trained on VOC2007
trainval, tested on VOC2007 test (paper: 69.9 mAP; with IA 71.1). `ia_faster_rcnn_VGG16_voc07.py` is this
file with `IAROIHeads`.

Model (the original Faster R-CNN): VGG-16 conv5_3 (stride 16, conv1-conv2 frozen) -> RPN on that one map
with 3 scales (128, 256, 512) x 3 ratios -> 7x7 RoIAlign -> fc6/fc7 (4096, 4096) -> classifier/regressor.
Recipe (paper, Sec. 4.1.1): batch 2, LR 2e-3 for 6 epochs then 2e-4 for 2 epochs; short side 600, max 1000,
horizontal flip. One epoch = 5011 images / 2 = 2506 iterations.

``train.init_checkpoint``: ImageNet VGG-16 converted with
``python projects/InvertedAttention/tools/convert_vgg16_frcnn.py vgg16-397923af.pth pretrained/vgg16_frcnn.pth``
(torchvision's weights; conv layers -> backbone, classifier fc6/fc7 -> box head fc1/fc2).
"""

import net_detr2.data.transforms as T
from net_detr2.config import LazyCall as L
from net_detr2.layers import ShapeSpec
from net_detr2.model_zoo.configs.common.data.voc import dataloader
from net_detr2.model_zoo.configs.common.optim import SGD as optimizer
from net_detr2.model_zoo.configs.common.train import train
from net_detr2.modeling import (
    RPN,
    VGG16,
    Box2BoxTransform,
    DefaultAnchorGenerator,
    FastRCNNConvFCHead,
    FastRCNNOutputLayers,
    GeneralizedRCNN,
    Matcher,
    ROIPooler,
    StandardROIHeads,
    StandardRPNHead,
)
from net_detr2.solver import multistep_with_warmup

NUM_CLASSES = 20
IMAGES_PER_EPOCH = 5011  # voc_2007_trainval
BATCH = 2
EPOCH = IMAGES_PER_EPOCH // BATCH + 1  # 2506 iterations

model = L(GeneralizedRCNN)(
    backbone=L(VGG16)(out_features=["conv5_3"], l2norm_scale=None, freeze_at=2),
    proposal_generator=L(RPN)(
        in_features=["conv5_3"],
        head=L(StandardRPNHead)(in_channels=512, num_anchors=9),
        anchor_generator=L(DefaultAnchorGenerator)(
            sizes=[[128, 256, 512]], aspect_ratios=[0.5, 1.0, 2.0], strides=[16], offset=0.0
        ),
        anchor_matcher=L(Matcher)(thresholds=[0.3, 0.7], labels=[0, -1, 1], allow_low_quality_matches=True),
        box2box_transform=L(Box2BoxTransform)(weights=[1.0, 1.0, 1.0, 1.0]),
        batch_size_per_image=256,
        positive_fraction=0.5,
        pre_nms_topk=(12000, 6000),
        post_nms_topk=(2000, 300),
        nms_thresh=0.7,
    ),
    roi_heads=L(StandardROIHeads)(
        num_classes=NUM_CLASSES,
        batch_size_per_image=128,
        positive_fraction=0.25,
        proposal_matcher=L(Matcher)(thresholds=[0.5], labels=[0, 1], allow_low_quality_matches=False),
        box_in_features=["conv5_3"],
        box_pooler=L(ROIPooler)(output_size=7, scales=(1.0 / 16,), sampling_ratio=0, pooler_type="ROIAlignV2"),
        box_head=L(FastRCNNConvFCHead)(
            input_shape=ShapeSpec(channels=512, height=7, width=7), conv_dims=[], fc_dims=[4096, 4096]
        ),
        box_predictor=L(FastRCNNOutputLayers)(
            input_shape=ShapeSpec(channels=4096),
            test_score_thresh=0.05,
            box2box_transform=L(Box2BoxTransform)(weights=(10, 10, 5, 5)),
            num_classes=NUM_CLASSES,
        ),
    ),
    # torchvision's ImageNet statistics in BGR 0..255 (the converter flips conv1_1 to BGR)
    pixel_mean=[103.530, 116.280, 123.675],
    pixel_std=[57.375, 57.120, 58.395],
    input_format="BGR",
)

dataloader.train.dataset.names = "voc_2007_trainval"
dataloader.train.total_batch_size = BATCH
dataloader.train.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=600, max_size=1000),
    L(T.RandomFlip)(horizontal=True),
]
dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=600, max_size=1000)]

optimizer.lr = 2e-3
train.init_checkpoint = "pretrained/vgg16_frcnn.pth"
train.max_iter = 8 * EPOCH
train.eval_period = 8 * EPOCH
train.checkpointer.period = EPOCH
train.output_dir = "./output/voc07_frcnn_VGG16"
lr_multiplier = multistep_with_warmup(max_iter=8 * EPOCH, steps=(6 * EPOCH,), warmup_iters=100, warmup_factor=0.001)
