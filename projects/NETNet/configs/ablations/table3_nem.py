"""Table 3 'NEM': two skip NEMs on (p1,p3), (p2,p4). SSD300 VGG-16, COCO, base LR 0.002."""

from ..common.netnet import to_netnet
from .base import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model, use_ntm=False, fusion=None, pairs=[[0, 2], [1, 3]])
train.output_dir = "./output/netnet/ablations/table3_nem"
