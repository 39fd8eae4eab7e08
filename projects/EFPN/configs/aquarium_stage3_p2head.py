"""EFPN stage 3 on the Aquarium photos: fine-tune only the P2' box head (+ predictor) with OHEM; all else
frozen. ``train.init_checkpoint`` defaults to stage 2's output. Optimizer: stage 1's (AdamW, LR 1e-3),
300 iterations, x0.1 at 225 and 276.

    OMP_NUM_THREADS=2 python train_net.py --config-file projects/EFPN/configs/aquarium_stage3_p2head.py
"""

from net_detr2.solver import multistep_with_warmup
from net_detr2_projects.EFPN.efpn import set_stage

from .aquarium_stage2_distill import dataloader, model, optimizer, train

MAX_ITER = 300

set_stage(3, model=model, dataloader=dataloader, train=train)
train.init_checkpoint = "./output/efpn/aquarium/stage2/model_final.pth"
train.output_dir = "./output/efpn/aquarium/stage3"
train.max_iter = MAX_ITER
train.eval_period = MAX_ITER
train.checkpointer.period = MAX_ITER
lr_multiplier = multistep_with_warmup(max_iter=MAX_ITER, steps=(225, 276), warmup_iters=20, warmup_factor=0.01)
