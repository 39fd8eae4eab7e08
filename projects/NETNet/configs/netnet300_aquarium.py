"""NETNet300 on the Aquarium photos: `ssd300_aquarium.py` plus NNFM + two skip NETMs (BN in the light fusion
blocks), identical data and schedule; about 20 minutes on 2 CPU cores."""

from .common.netnet import to_netnet
from .ssd300_aquarium import dataloader, lr_multiplier, model, optimizer, train

model = to_netnet(model, norm="BN")
train.output_dir = "./output/aquarium/netnet300"
