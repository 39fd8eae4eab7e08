"""EFPN stage 2 on `shapes`: train only the extension (C2' lateral, FTT, P2' conv) by cross-resolution
distillation (L_fbb on P3' and P2', teacher = the frozen FPN on the 2x image); everything else frozen.

``train.init_checkpoint`` defaults to stage 1's ``output/shapes_frcnn/model_final.pth`` (override it on the
command line). The P2' box head is initialised as a copy of the base head when that FPN checkpoint loads.
The final evaluation is EFPN before the P2' head is fine-tuned.

Optimizer: stage 1's (AdamW, LR 1e-3; stages 2 and 3 keep it, see the EFPN README "Stage learning rates"),
1000 iterations, x0.1 at 750 and 920.

    OMP_NUM_THREADS=2 python train_net.py --config-file projects/EFPN/configs/shapes_stage2_distill.py
"""

from net_detr2.solver import multistep_with_warmup
from net_detr2_projects.EFPN.efpn import efpn_model_from_fpn, set_stage

from .shapes_stage1_fpn import dataloader, model, optimizer, train

# RoIs below 56 px (sqrt area) use P2': the shapes config pools with canonical size 112, so these are
# exactly the RoIs the FPN baseline pools from P2 (112 px at canonical 224 on COCO, by the same rule).
SMALL_ROI_THRESHOLD = 56.0
MAX_ITER = 1000

model = efpn_model_from_fpn(model, small_roi_threshold=SMALL_ROI_THRESHOLD)
set_stage(2, model=model, dataloader=dataloader, train=train)

train.init_checkpoint = "./output/shapes_frcnn/model_final.pth"
train.output_dir = "./output/efpn/shapes/stage2"
train.max_iter = MAX_ITER
train.eval_period = MAX_ITER
train.checkpointer.period = MAX_ITER
lr_multiplier = multistep_with_warmup(max_iter=MAX_ITER, steps=(750, 920), warmup_iters=50, warmup_factor=0.01)
