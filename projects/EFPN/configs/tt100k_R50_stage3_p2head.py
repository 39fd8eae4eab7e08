"""EFPN stage 3 on TT100K: fine-tune only the P2' box head with OHEM; everything else frozen.

``train.init_checkpoint`` defaults to stage 2's ``output/efpn/tt100k_R50/stage2/model_final.pth``.
Schedule (ours): 20k iterations at batch 8, LR 0.01, x0.1 at 14k and 18k.

    python train_net.py --config-file projects/EFPN/configs/tt100k_R50_stage3_p2head.py
"""

from net_detr2.solver import multistep_with_warmup
from net_detr2_projects.EFPN.efpn import set_stage

from .tt100k_R50_stage2_distill import dataloader, model, optimizer, train

MAX_ITER = 20000

set_stage(3, model=model, dataloader=dataloader, train=train)
train.init_checkpoint = "./output/efpn/tt100k_R50/stage2/model_final.pth"
train.output_dir = "./output/efpn/tt100k_R50/stage3"
train.max_iter = MAX_ITER
train.eval_period = MAX_ITER
optimizer.lr = 0.01
lr_multiplier = multistep_with_warmup(max_iter=MAX_ITER, steps=(14000, 18000), warmup_iters=500, warmup_factor=0.001)
