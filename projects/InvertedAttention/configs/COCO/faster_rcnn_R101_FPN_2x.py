"""Baseline of Table 6: Faster R-CNN R101-FPN on COCO 2017, 2x schedule (180k iterations at batch 16,
LR 0.02, x0.1 at 120k and 160k)."""

from net_detr2.solver import multistep_with_warmup

from .faster_rcnn_R101_FPN_1x import dataloader, model, optimizer, train

train.max_iter = 180000
train.output_dir = "./output/coco_frcnn_R101_FPN_2x"
lr_multiplier = multistep_with_warmup(max_iter=180000, steps=(120000, 160000), warmup_iters=1000, warmup_factor=0.001)
