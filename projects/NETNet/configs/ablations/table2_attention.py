"""Table 2 'Global Attention': two NEMs with a reduced-channel self-attention gate.
SSD300 VGG-16, COCO, base LR 0.002.
"""

from ..common.netnet import to_netnet
from .base import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model, use_ntm=False, fusion=None, gate="attention")
train.output_dir = "./output/netnet/ablations/table2_attention"
