"""The `shapes` baseline (configs/shapes/faster_rcnn_R18_FPN.py) on a 500-iteration schedule: the same
model, data and seed, LR x0.1 at 75% and 92% of the run, 100 warm-up iterations, as the 3000-iteration
original. Used for the baseline-vs-IA comparison in projects/InvertedAttention/README.md, where two
runs had to fit a shared 2-core machine; `ia_faster_rcnn_R18_FPN_shapes_short.py` is this file with IA.
"""
from net_detr2.solver import multistep_with_warmup

from .....configs.shapes.faster_rcnn_R18_FPN import dataloader, model, optimizer, train

MAX_ITER = 500
train.max_iter = MAX_ITER
train.eval_period = MAX_ITER
train.checkpointer.period = MAX_ITER
train.output_dir = "./output/shapes_frcnn_short"
lr_multiplier = multistep_with_warmup(
    max_iter=MAX_ITER, steps=(int(MAX_ITER * 0.75), int(MAX_ITER * 0.92)), warmup_iters=100, warmup_factor=0.001
)
