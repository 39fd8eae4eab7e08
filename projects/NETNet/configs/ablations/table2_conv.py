"""Table 2 'NEM': two NEMs with the conv1x1 channel-wise gate (Eq. 6). SSD300 VGG-16, COCO, base LR 0.002."""

from ..common.netnet import to_netnet
from .base import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model, use_ntm=False, fusion=None, gate="conv")
train.output_dir = "./output/netnet/ablations/table2_conv"
