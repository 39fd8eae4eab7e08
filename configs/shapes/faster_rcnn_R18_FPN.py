"""Faster R-CNN with a narrow ResNet-18-style FPN backbone, trained from scratch on the synthetic `shapes`
dataset (6 classes) in about 10 minutes on 2 CPU cores.

From scratch, so: BatchNorm (not frozen) in the ResNet, GroupNorm in the FPN, no frozen stages, inputs
normalised to unit std; anchors scaled down to the 6..200 px objects (two sizes per level); fewer proposals
and sampled RoIs than COCO to keep the CPU step short.

    OMP_NUM_THREADS=2 python train_net.py --config-file configs/shapes/faster_rcnn_R18_FPN.py \\
        train.output_dir=output/shapes_frcnn
"""

from net_detr2.solver import multistep_with_warmup

from ..common.data.shapes import dataloader
from ..common.models.faster_rcnn_fpn import model
from ..common.models.narrow_resnet18 import bottom_up
from ..common.optim import AdamW as optimizer
from ..common.train import train

NUM_CLASSES = 6
FPN_CHANNELS = 32
MAX_ITER = 1000

model.backbone.bottom_up = bottom_up
model.backbone.out_channels = FPN_CHANNELS
model.backbone.norm = "GN"
# ImageNet BGR statistics: unit-std inputs for a network trained from scratch
model.pixel_std = [57.375, 57.120, 58.395]

_rpn = model.proposal_generator
_rpn.head.num_anchors = 2
_rpn.anchor_generator.sizes = [[s, s * 1.5] for s in (10, 20, 40, 80, 160)]
_rpn.anchor_generator.aspect_ratios = [1.0]
_rpn.pre_nms_topk = (1000, 500)
_rpn.post_nms_topk = (500, 300)

_rh = model.roi_heads
_rh.num_classes = NUM_CLASSES
_rh.batch_size_per_image = 128
_rh.box_pooler.canonical_box_size = 112  # objects are small: shift the level assignment one level finer
_rh.box_head.fc_dims = [256, 256]
_rh.box_predictor.input_shape.channels = 256

train.max_iter = MAX_ITER
train.eval_period = MAX_ITER
train.checkpointer.period = MAX_ITER
train.log_period = 50
train.device = "cpu"
train.seed = 0
optimizer.lr = 1e-3  # AdamW: converges much faster than SGD when training from scratch
optimizer.weight_decay = 0.05
lr_multiplier = multistep_with_warmup(
    max_iter=MAX_ITER, steps=(int(MAX_ITER * 0.75), int(MAX_ITER * 0.92)), warmup_iters=100, warmup_factor=0.001
)
train.num_vis_images = 8  # prediction pictures of validation images after training
