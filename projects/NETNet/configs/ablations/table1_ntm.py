"""Table 1 'NTM': the gated part of p1/p2 is transferred to p3/p4, nothing erased.
SSD300 VGG-16, COCO, base LR 0.002.
"""

from ..common.netnet import to_netnet
from .base import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model, use_nem=False, fusion=None)
train.output_dir = "./output/netnet/ablations/table1_ntm"
