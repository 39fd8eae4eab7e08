"""The control for EFPN's stage 3 on the Aquarium photos: the stage-1 FPN with its own box head (+ predictor)
fine-tuned for stage 3's budget (300 iterations, stage 1's AdamW at 1e-3, the same schedule, BN frozen; the
standard RoI sampling). See ``shapes_control_head_ft.py``.

    OMP_NUM_THREADS=1 python train_net.py --config-file projects/EFPN/configs/aquarium_control_head_ft.py
"""

from net_detr2.solver import multistep_with_warmup
from net_detr2_projects.EFPN.efpn import freeze_bottom_up_batchnorm

from .aquarium_stage1_fpn import dataloader, model, optimizer, train

MAX_ITER = 300

freeze_bottom_up_batchnorm(model)
train.trainable_params = [r"roi_heads\.box_(head|predictor)\."]
train.init_checkpoint = "./output/aquarium/faster_rcnn_R18_FPN/model_final.pth"
train.output_dir = "./output/efpn/aquarium/control_head_ft"
train.max_iter = MAX_ITER
train.eval_period = MAX_ITER
train.checkpointer.period = MAX_ITER
lr_multiplier = multistep_with_warmup(max_iter=MAX_ITER, steps=(225, 276), warmup_iters=20, warmup_factor=0.01)
