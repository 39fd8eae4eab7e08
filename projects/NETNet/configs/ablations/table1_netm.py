"""Table 1 'NETM': NEM + NTM on (p1,p3), (p2,p4), no fusion. SSD300 VGG-16, COCO, base LR 0.002."""

from ..common.netnet import to_netnet
from .base import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model, fusion=None)
train.output_dir = "./output/netnet/ablations/table1_netm"
