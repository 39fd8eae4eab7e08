"""RetinaNet with a narrow ResNet-18-style FPN backbone, trained from scratch on the synthetic `shapes`
dataset (6 classes) in about 10 minutes on 2 CPU cores.

Same backbone recipe as faster_rcnn_R18_FPN.py (BatchNorm ResNet, GroupNorm FPN). Unlike the COCO model
it predicts on P2-P6 (strides 4..64, P6 by max-pool) with anchors twice the stride: on P3-P7 an object is
matched on a level where it covers about one cell, and the classifier then had too little to see
(1000 iterations, no head norm: AP 4.3 on P3-P7, 10.1 on P2-P6). The two-conv head towers have no norm
(GroupNorm of 32 channels in 32 groups gave no better loss and cost 2x the time), and a dense head learns
the classes far more slowly than the Faster R-CNN's RoI head, so the schedule is 2000 iterations at a
higher LR.

    OMP_NUM_THREADS=2 python train_net.py --config-file configs/shapes/retinanet_R18_FPN.py \\
        train.output_dir=output/shapes_retinanet
"""

from net_detr2.config import LazyCall as L
from net_detr2.layers import ShapeSpec
from net_detr2.modeling import LastLevelMaxPool
from net_detr2.solver import multistep_with_warmup

from ..common.data.shapes import dataloader
from ..common.models.narrow_resnet18 import bottom_up
from ..common.models.retinanet import model
from ..common.optim import AdamW as optimizer
from ..common.train import train

NUM_CLASSES = 6
FPN_CHANNELS = 32
MAX_ITER = 2000

model.backbone.bottom_up = bottom_up
model.backbone.in_features = ["res2", "res3", "res4", "res5"]
model.backbone.top_block = L(LastLevelMaxPool)()
model.backbone.out_channels = FPN_CHANNELS
model.backbone.norm = "GN"
model.pixel_std = [57.375, 57.120, 58.395]

model.num_classes = NUM_CLASSES
model.head.num_anchors = 2
model.head.conv_dims = [FPN_CHANNELS, FPN_CHANNELS]
model.head_in_features = ["p2", "p3", "p4", "p5", "p6"]
model.anchor_generator.strides = [4, 8, 16, 32, 64]
model.anchor_generator.sizes = [[s, s * 1.5] for s in (8, 16, 32, 64, 128)]
model.anchor_generator.aspect_ratios = [1.0]

train.max_iter = MAX_ITER
train.eval_period = MAX_ITER
train.checkpointer.period = MAX_ITER
train.log_period = 50
train.device = "cpu"
train.seed = 0
optimizer.lr = 3e-3  # AdamW: converges much faster than SGD when training from scratch
optimizer.weight_decay = 0.05
lr_multiplier = multistep_with_warmup(
    max_iter=MAX_ITER, steps=(int(MAX_ITER * 0.75), int(MAX_ITER * 0.92)), warmup_iters=100, warmup_factor=0.001
)
train.num_vis_images = 8  # prediction pictures of validation images after training
