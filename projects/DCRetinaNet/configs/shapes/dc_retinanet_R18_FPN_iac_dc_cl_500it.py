"""`dc_retinanet_R18_FPN_iac_dc_cl.py` (Table 2 on `shapes`: row 4, the full method; row 3 is its weights evaluated with cl_nms=False) on a 500-iteration
schedule: the same model, data, seed and optimizer, LR x0.1 at 75% and 92% of the run, 50 warm-up
iterations. The runs in projects/DCRetinaNet/README.md use this length because they shared a busy 2-core
machine with other trainings.

    OMP_NUM_THREADS=1 python train_net.py --config-file projects/DCRetinaNet/configs/shapes/dc_retinanet_R18_FPN_iac_dc_cl_500it.py
"""
from net_detr2.solver import multistep_with_warmup

from .dc_retinanet_R18_FPN_iac_dc_cl import dataloader, model, optimizer, train

MAX_ITER = 500
train.max_iter = MAX_ITER
train.eval_period = MAX_ITER
train.checkpointer.period = MAX_ITER
train.output_dir = "./output/dc_retinanet/shapes_iac_dc_cl_500it"
lr_multiplier = multistep_with_warmup(
    max_iter=MAX_ITER, steps=(int(MAX_ITER * 0.75), int(MAX_ITER * 0.92)), warmup_iters=50, warmup_factor=0.001
)
