"""Table 2 'Max Attention': two NEMs with a channel-max gate (Eq. 5). SSD300 VGG-16, COCO, base LR 0.002."""

from ..common.netnet import to_netnet
from .base import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model, use_ntm=False, fusion=None, gate="max")
train.output_dir = "./output/netnet/ablations/table2_max"
