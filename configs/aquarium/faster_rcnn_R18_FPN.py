"""Faster R-CNN, narrow ResNet-18-FPN, trained from scratch on the Aquarium photos in about 20 minutes on
2 CPU cores (~6 images/s).

    OMP_NUM_THREADS=2 python train_net.py --config-file configs/aquarium/faster_rcnn_R18_FPN.py

The `shapes` model (configs/shapes/faster_rcnn_R18_FPN.py: BatchNorm ResNet at 1/4 of ResNet-18's width,
32-channel GroupNorm FPN, unit-std inputs, AdamW) with the Aquarium data (short edge 384, 3/8 of the
photos), 7 classes, detectron2's anchor aspect ratios 1:2, 1:1, 2:1 (fish and sharks are elongated) at sizes
16..256 px, its canonical RoI level size (224: these objects are larger than the shapes) and 1800
iterations (~16 epochs). The narrow network trains 2.6x faster per image than a half-width one (6.2 vs 2.4
images/s measured), and on 448 photos more epochs help more than width.
`faster_rcnn_R18_FPN_gpu.py` is the same model with a schedule for a GPU.
"""

from net_detr2.solver import multistep_with_warmup

from ..common.data.aquarium import dataloader
from ..shapes.faster_rcnn_R18_FPN import model, optimizer, train

NUM_CLASSES = 7
MAX_ITER = 1800

_rpn = model.proposal_generator
_rpn.head.num_anchors = 3
_rpn.anchor_generator.sizes = [[16], [32], [64], [128], [256]]
_rpn.anchor_generator.aspect_ratios = [0.5, 1.0, 2.0]

_rh = model.roi_heads
_rh.num_classes = NUM_CLASSES
_rh.box_pooler.canonical_box_size = 224

train.max_iter = MAX_ITER
lr_multiplier = multistep_with_warmup(
    max_iter=MAX_ITER, steps=(int(MAX_ITER * 0.8), int(MAX_ITER * 0.93)), warmup_iters=100, warmup_factor=0.001
)
train.eval_period = MAX_ITER
train.checkpointer.period = 600
train.log_period = 20
train.output_dir = "./output/aquarium/faster_rcnn_R18_FPN"
