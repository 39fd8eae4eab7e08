"""NETNet512, VGG-16, COCO (the paper's 512 VGG model)."""

from .common.netnet import to_netnet
from .ssd512_vgg16_coco import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model)
train.output_dir = "./output/netnet/netnet512_vgg16_coco"
