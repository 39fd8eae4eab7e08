"""Table 1 'NEM': two skip NEMs (with light fusion), no NTM, no NNFM. SSD300 VGG-16, COCO, base LR 0.002."""

from ..common.netnet import to_netnet
from .base import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model, use_ntm=False, fusion=None)
train.output_dir = "./output/netnet/ablations/table1_nem"
