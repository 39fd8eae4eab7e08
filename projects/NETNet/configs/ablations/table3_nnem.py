"""Table 3 'NNEM': three nearest-neighbour NEMs on (p1,p2), (p2,p3), (p3,p4). SSD300 VGG-16, COCO, base LR 0.002."""

from ..common.netnet import to_netnet
from .base import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model, use_ntm=False, fusion=None, pairs=[[0, 1], [1, 2], [2, 3]])
train.output_dir = "./output/netnet/ablations/table3_nnem"
