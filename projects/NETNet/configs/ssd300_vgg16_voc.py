"""SSD300, VGG-16, PASCAL VOC 07+12 trainval -> VOC2007 test (VOC default boxes, 20 classes).

The paper reports COCO only; we keep its recipe (160 epochs at batch 32, LR 0.004, steps at 90/120/140).
"""

from net_detr2.model_zoo.configs.common.data.voc_ssd import dataloader
from net_detr2.model_zoo.configs.common.optim import SGD as optimizer
from net_detr2.model_zoo.configs.common.train import train
from net_detr2.modeling.anchor_generator import ssd_default_box_sizes

from .common.schedule import VOC0712_TRAINVAL_IMAGES, epoch_schedule
from .common.ssd_vgg16 import model

model.num_classes = 20
model.prior_generator.update(ssd_default_box_sizes(300, "voc"))
dataloader.train.total_batch_size = 32

train.max_iter, lr_multiplier = epoch_schedule(VOC0712_TRAINVAL_IMAGES, batch_size=32)
optimizer.lr = 0.004
optimizer.momentum = 0.9
optimizer.weight_decay = 5e-4
train.init_checkpoint = "output/vgg16_ssd.pth"
train.checkpointer.period = 5180  # 10 epochs
train.eval_period = 10360
train.output_dir = "./output/netnet/ssd300_vgg16_voc"
