"""NETNet300, VGG-16, COCO: SSD300 + NNFM + two skip NETMs (the paper's final 300 model, base LR 0.004)."""

from .common.netnet import to_netnet
from .ssd300_vgg16_coco import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model)
train.output_dir = "./output/netnet/netnet300_vgg16_coco"
