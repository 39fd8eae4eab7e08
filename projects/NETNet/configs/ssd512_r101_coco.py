"""SSD512, ResNet-101 (res3/res4 + extra layers), COCO trainval35k -> minival, paper recipe, LR 0.004."""

from net_detr2.model_zoo.configs.common.data.loader import ssd_augmentations

from .common.ssd512_r101 import model
from .ssd300_vgg16_coco import dataloader, lr_multiplier, optimizer, train

dataloader.train.mapper.augmentations = ssd_augmentations(512, train=True)
dataloader.test.mapper.augmentations = ssd_augmentations(512, train=False)
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-101.pkl"
train.output_dir = "./output/netnet/ssd512_r101_coco"
