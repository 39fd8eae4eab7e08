"""Baseline of Table 4, "Faster [15] 07+12 VGG16": as `faster_rcnn_VGG16_voc07.py`, trained on VOC2007 +
VOC2012 trainval (16551 images; 8 epochs = 66208 iterations at batch 2, LR x0.1 after 6). Paper: 73.2 mAP
(with IA 76.8)."""

from net_detr2.solver import multistep_with_warmup

from .faster_rcnn_VGG16_voc07 import BATCH, dataloader, model, optimizer, train

EPOCH = 16551 // BATCH + 1  # 8276 iterations

dataloader.train.dataset.names = ["voc_2007_trainval", "voc_2012_trainval"]
train.max_iter = 8 * EPOCH
train.eval_period = 8 * EPOCH
train.checkpointer.period = EPOCH
train.output_dir = "./output/voc0712_frcnn_VGG16"
lr_multiplier = multistep_with_warmup(max_iter=8 * EPOCH, steps=(6 * EPOCH,), warmup_iters=100, warmup_factor=0.001)
