"""EFPN stage 2 on TT100K (1400): train only the extension by cross-resolution distillation against the
frozen FPN on the 2x image (2800). RoIs below 56 px (sqrt area) use P2' (paper).

``train.init_checkpoint`` defaults to stage 1's ``output/efpn/tt100k_R50/stage1/model_final.pth``.
Schedule (ours): 30k iterations at batch 8, LR 0.01, x0.1 at 20k and 26k.

    python train_net.py --config-file projects/EFPN/configs/tt100k_R50_stage2_distill.py
"""

from net_detr2.solver import multistep_with_warmup
from net_detr2_projects.EFPN.efpn import efpn_model_from_fpn, set_stage

from .tt100k_R50_stage1_fpn import dataloader, model, optimizer, train

SMALL_ROI_THRESHOLD = 56.0
MAX_ITER = 30000

model = efpn_model_from_fpn(model, small_roi_threshold=SMALL_ROI_THRESHOLD)
set_stage(2, model=model, dataloader=dataloader, train=train)
train.init_checkpoint = "./output/efpn/tt100k_R50/stage1/model_final.pth"
train.output_dir = "./output/efpn/tt100k_R50/stage2"
train.max_iter = MAX_ITER
train.eval_period = MAX_ITER
optimizer.lr = 0.01
lr_multiplier = multistep_with_warmup(max_iter=MAX_ITER, steps=(20000, 26000), warmup_iters=500, warmup_factor=0.001)
