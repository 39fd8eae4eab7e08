"""EFPN stage 2 on the Aquarium photos: train only the extension (C2' lateral, FTT, P2' conv) by
cross-resolution distillation from the frozen stage-1 FPN on the 2x image; everything else frozen.

RoIs under 112 px (sqrt area) use P2': the Aquarium recipe pools with detectron2's canonical size 224, so
these are the RoIs FPN pools from P2 (the paper's COCO rule). The teacher sees the photo at 2x the training
scale (short edge 640..832, from the 1024x768 originals), so a step costs ~3x a stage-1 step.
Optimizer: stage 1's (AdamW, LR 1e-3), 300 iterations, x0.1 at 225 and 276.

    OMP_NUM_THREADS=2 python train_net.py --config-file projects/EFPN/configs/aquarium_stage2_distill.py
"""

from net_detr2.solver import multistep_with_warmup
from net_detr2_projects.EFPN.efpn import efpn_model_from_fpn, set_stage

from .aquarium_stage1_fpn import dataloader, model, optimizer, train

SMALL_ROI_THRESHOLD = 112.0
MAX_ITER = 300

model = efpn_model_from_fpn(model, small_roi_threshold=SMALL_ROI_THRESHOLD)
set_stage(2, model=model, dataloader=dataloader, train=train)

train.init_checkpoint = "./output/aquarium/faster_rcnn_R18_FPN/model_final.pth"
train.output_dir = "./output/efpn/aquarium/stage2"
train.max_iter = MAX_ITER
train.eval_period = MAX_ITER
train.checkpointer.period = MAX_ITER
lr_multiplier = multistep_with_warmup(max_iter=MAX_ITER, steps=(225, 276), warmup_iters=20, warmup_factor=0.01)
