"""Table 1 'NETM + TDP': a top-down pyramid before the NETMs. SSD300 VGG-16, COCO, base LR 0.002."""

from ..common.netnet import to_netnet
from .base import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model, fusion="tdp")
train.output_dir = "./output/netnet/ablations/table1_netm_tdp"
