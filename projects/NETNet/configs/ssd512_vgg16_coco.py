"""SSD512, VGG-16, COCO trainval35k -> minival (7 levels, SSD512 COCO default boxes), paper recipe, LR 0.004."""

from .common.ssd512_vgg16 import model
from .common.ssd_data_size import set_input_size
from .ssd300_vgg16_coco import dataloader, lr_multiplier, optimizer, train

set_input_size(dataloader, 512)
train.output_dir = "./output/netnet/ssd512_vgg16_coco"
