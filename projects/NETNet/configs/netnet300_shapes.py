"""NETNet300 on `shapes`: `ssd300_shapes.py` plus NNFM + two skip NETMs (BN in the light fusion blocks)."""

from .common.netnet import to_netnet
from .ssd300_shapes import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model, norm="BN")
train.output_dir = "./output/netnet/netnet300_shapes"
