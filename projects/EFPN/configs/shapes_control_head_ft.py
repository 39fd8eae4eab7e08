"""The control for EFPN's stage 3 on `shapes`: the stage-1 FPN with its own box head (+ predictor) fine-tuned
for stage 3's budget (1000 iterations, stage 1's AdamW at 1e-3, the same schedule, BN frozen as in stages
2-3; the standard RoI sampling, since OHEM is EFPN's P2'-head recipe). EFPN's gain over the FPN baseline
counts only where it exceeds this one's: more training of a head alone can raise AP.

    OMP_NUM_THREADS=1 python train_net.py --config-file projects/EFPN/configs/shapes_control_head_ft.py
"""

from net_detr2.solver import multistep_with_warmup
from net_detr2_projects.EFPN.efpn import freeze_bottom_up_batchnorm

from .shapes_stage1_fpn import dataloader, model, optimizer, train

MAX_ITER = 1000

freeze_bottom_up_batchnorm(model)
train.trainable_params = [r"roi_heads\.box_(head|predictor)\."]
train.init_checkpoint = "./output/shapes_frcnn/model_final.pth"
train.output_dir = "./output/efpn/shapes/control_head_ft"
train.max_iter = MAX_ITER
train.eval_period = MAX_ITER
train.checkpointer.period = MAX_ITER
lr_multiplier = multistep_with_warmup(max_iter=MAX_ITER, steps=(750, 920), warmup_iters=50, warmup_factor=0.01)
