"""EFPN stage 2 on COCO (800 short side): train only the extension (C2' lateral, FTT, P2' conv) by
cross-resolution distillation against the frozen FPN run on the 2x image (1600 short side).

``train.init_checkpoint`` defaults to stage 1's ``output/efpn/coco_R50/stage1/model_final.pth``; a
detectron2 model-zoo R50-FPN checkpoint works as well (same state-dict keys). Schedule (ours; the paper
gives none): 45k iterations at batch 16, LR 0.02, x0.1 at 30k and 40k.

    python train_net.py --config-file projects/EFPN/configs/coco_R50_stage2_distill.py
"""

from net_detr2.solver import multistep_with_warmup
from net_detr2_projects.EFPN.efpn import efpn_model_from_fpn, set_stage

from .coco_R50_stage1_fpn import dataloader, model, optimizer, train

SMALL_ROI_THRESHOLD = 112.0  # paper, COCO at 800: RoIs below 112 px (sqrt area) use P2'
MAX_ITER = 45000

model = efpn_model_from_fpn(model, small_roi_threshold=SMALL_ROI_THRESHOLD)
set_stage(2, model=model, dataloader=dataloader, train=train)
train.init_checkpoint = "./output/efpn/coco_R50/stage1/model_final.pth"
train.output_dir = "./output/efpn/coco_R50/stage2"
train.max_iter = MAX_ITER
optimizer.lr = 0.02
lr_multiplier = multistep_with_warmup(max_iter=MAX_ITER, steps=(30000, 40000), warmup_iters=1000, warmup_factor=0.001)
