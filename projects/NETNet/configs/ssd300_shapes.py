"""SSD300 on the synthetic `shapes` dataset, from scratch on CPU (one thread, bf16, 1000 iterations).

Same architecture as SSD300-VGG16 (conv4_3 + L2Norm, pool5 3x3/1, dilated fc6, 1x1 fc7, 4 extra layers,
8732 COCO default boxes) but 1/8 of VGG's width and BatchNorm after every conv, since nothing is pretrained.
`netnet300_shapes.py` is this config plus the NETNet neck, with the identical schedule.
"""

from net_detr2.model_zoo.configs.common.data.loader import fixed_size_augmentations
from net_detr2.model_zoo.configs.common.data.shapes_ssd import dataloader
from net_detr2.model_zoo.configs.common.optim import AdamW as optimizer
from net_detr2.model_zoo.configs.common.train import train
from net_detr2.solver import multistep_with_warmup
from net_detr2_projects.NETNet.netnet.config_utils import set_vgg16_width

from .common.ssd_vgg16 import model

WIDTH = 0.125
MAX_ITER = 1000

model.num_classes = 6
model.backbone.bottom_up.norm = "BN"
model.backbone.norm = "BN"
set_vgg16_width(model, WIDTH)
# From scratch, the SSD release's head init (Xavier, zero bias) starts ~40% of 8732 default boxes as foreground
# and the classification loss swamps everything (AP 0.2 after 300 iterations); every box starting at
# foreground probability 0.01 (RetinaNet's init) trains (AP 11.2). projects/NETNet/README.md has the probes.
model.head.prior_prob = 0.01
# BGR 0-255 input, ImageNet statistics (no pretrained weights to match).
model.pixel_mean = [103.53, 116.28, 123.675]
model.pixel_std = [57.375, 57.12, 58.395]

dataloader.train.total_batch_size = 8
# Resize + flip only: SSD's zoom-out (up to 4x) shrinks shapes' small objects below the smallest default boxes;
# at 300 iterations the full SSD augmentation reached AP 1.4, resize + flip 11.2 (photometric + flip 9.4).
dataloader.train.mapper.augmentations = fixed_size_augmentations(300, train=True)

# From scratch, AdamW converges far faster than the paper's SGD (which needs ImageNet weights and 160 epochs):
# SGD at lr 0.005 had learnt next to nothing after 300 iterations. lr 1e-3 / 3e-3 / 6e-3: AP 4.0 / 11.2 / 11.4.
optimizer.lr = 3e-3
optimizer.weight_decay = 0.05
train.max_iter = MAX_ITER
lr_multiplier = multistep_with_warmup(max_iter=MAX_ITER, steps=(750, 900), warmup_iters=50, warmup_factor=0.01)
train.device = "cpu"
# CPU bfloat16 autocast in channels-last layout: a training step ~0.4x the fp32 one (NETNet300: ~0.5x)
train.amp.enabled = True
model.channels_last = True
train.seed = 0
train.init_checkpoint = ""
train.eval_period = 0  # evaluate once at the end
train.checkpointer.period = MAX_ITER
train.log_period = 20
train.tensorboard = False
train.output_dir = "./output/netnet/ssd300_shapes"
train.num_vis_images = 8  # prediction pictures of validation images after training
