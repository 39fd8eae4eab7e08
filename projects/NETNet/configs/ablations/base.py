"""Ablation base (Tables 1-3): SSD300 VGG-16 on COCO trainval35k -> minival at base LR 0.002."""

from ..ssd300_vgg16_coco import dataloader, lr_multiplier, model, optimizer, train

optimizer.lr = 0.002
train.output_dir = "./output/netnet/ablations"
