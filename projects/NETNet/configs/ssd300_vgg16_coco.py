"""SSD300, VGG-16, COCO trainval35k (coco_2014_train + coco_2014_valminusminival) -> minival.

The NETNet paper's recipe: 160 epochs at batch 32, SGD momentum 0.9, weight decay 5e-4, 5-epoch warm-up,
LR x0.1 after epochs 90/120/140, base LR 0.004 (final models; the ablations use 0.002).
Initialise from an ImageNet VGG-16 converted by ``tools/convert_vgg16_to_ssd.py``.
"""

from net_detr2.model_zoo.configs.common.data.coco_ssd import dataloader
from net_detr2.model_zoo.configs.common.optim import SGD as optimizer
from net_detr2.model_zoo.configs.common.train import train

from .common.schedule import COCO_TRAINVAL35K_IMAGES, epoch_schedule
from .common.ssd_vgg16 import model

dataloader.train.dataset.names = ["coco_2014_train", "coco_2014_valminusminival"]
dataloader.test.dataset.names = "coco_2014_minival"
dataloader.train.total_batch_size = 32

train.max_iter, lr_multiplier = epoch_schedule(COCO_TRAINVAL35K_IMAGES, batch_size=32)
optimizer.lr = 0.004
optimizer.momentum = 0.9
optimizer.weight_decay = 5e-4
optimizer.params.weight_decay_norm = 0.0

train.init_checkpoint = (
    "output/vgg16_ssd.pth"  # python tools/convert_vgg16_to_ssd.py vgg16-397923af.pth output/vgg16_ssd.pth
)
train.checkpointer.period = 18325  # 5 epochs
train.eval_period = 36650  # 10 epochs
train.output_dir = "./output/netnet/ssd300_vgg16_coco"
