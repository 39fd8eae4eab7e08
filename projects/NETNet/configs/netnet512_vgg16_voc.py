"""NETNet512, VGG-16, PASCAL VOC 07+12 -> VOC2007 test."""

from .common.netnet import to_netnet
from .ssd512_vgg16_voc import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model)
train.output_dir = "./output/netnet/netnet512_vgg16_voc"
