"""SSD512, VGG-16, COCO trainval35k -> minival (7 levels, SSD512 COCO default boxes), paper recipe, LR 0.004."""

from net_detr2.model_zoo.configs.common.data.loader import ssd_augmentations

from .common.ssd512_vgg16 import model
from .ssd300_vgg16_coco import dataloader, lr_multiplier, optimizer, train

dataloader.train.mapper.augmentations = ssd_augmentations(512, train=True)
dataloader.test.mapper.augmentations = ssd_augmentations(512, train=False)
train.output_dir = "./output/netnet/ssd512_vgg16_coco"
