"""NETNet512, ResNet-101, COCO (the paper's best model; light fusion without norm, as for VGG)."""

from .common.netnet import to_netnet
from .ssd512_r101_coco import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model)
train.output_dir = "./output/netnet/netnet512_r101_coco"
