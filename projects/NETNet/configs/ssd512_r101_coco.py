"""SSD512, ResNet-101 (res3/res4 + extra layers), COCO trainval35k -> minival, paper recipe, LR 0.004."""

from .common.ssd512_r101 import model
from .common.ssd_data_size import set_input_size
from .ssd300_vgg16_coco import dataloader, lr_multiplier, optimizer, train

set_input_size(dataloader, 512)
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-101.pkl"
train.output_dir = "./output/netnet/ssd512_r101_coco"
