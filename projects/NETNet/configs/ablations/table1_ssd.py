"""Table 1 'Baseline SSD': plain SSD300. SSD300 VGG-16, COCO, base LR 0.002."""

from .base import dataloader, lr_multiplier, model, optimizer, train

train.output_dir = "./output/netnet/ablations/table1_ssd"
