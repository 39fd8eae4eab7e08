"""Table 3 'NEM13': one NEM on (p1, p3). SSD300 VGG-16, COCO, base LR 0.002."""

from ..common.netnet import to_netnet
from .base import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model, use_ntm=False, fusion=None, pairs=[[0, 2]])
train.output_dir = "./output/netnet/ablations/table3_nem13"
