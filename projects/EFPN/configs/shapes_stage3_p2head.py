"""EFPN stage 3 on `shapes`: fine-tune only the P2' box head (+ predictor) with OHEM (per image: the
25% positives with the largest cls+box loss, the rest negatives with the largest cls loss, among all
labelled RoIs routed to P2'); backbone, EFPN extension, RPN and base head frozen.

``train.init_checkpoint`` defaults to stage 2's ``output/efpn/shapes/stage2/model_final.pth``.
Optimizer: stage 1's (AdamW, LR 1e-3), 1000 iterations, x0.1 at 750 and 920.

    OMP_NUM_THREADS=2 python train_net.py --config-file projects/EFPN/configs/shapes_stage3_p2head.py
"""

from net_detr2.solver import multistep_with_warmup
from net_detr2_projects.EFPN.efpn import set_stage

from .shapes_stage2_distill import dataloader, model, optimizer, train

MAX_ITER = 1000

set_stage(3, model=model, dataloader=dataloader, train=train)
train.init_checkpoint = "./output/efpn/shapes/stage2/model_final.pth"
train.output_dir = "./output/efpn/shapes/stage3"
train.max_iter = MAX_ITER
train.eval_period = MAX_ITER
train.checkpointer.period = MAX_ITER
lr_multiplier = multistep_with_warmup(max_iter=MAX_ITER, steps=(750, 920), warmup_iters=50, warmup_factor=0.01)
