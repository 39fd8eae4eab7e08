"""Table III's "FPN-1400 + P2-2800" row on TT100K: the extended level P2' is the P2 of the stage-1 FPN run on
the image at 2x (2800), in training and at test; the P2' head is then fine-tuned on it as in stage 3 (OHEM,
everything else frozen). An upper bound for what FTT + distillation can give P2', at the cost of a second,
2x forward pass. Starts from stage 1 (the extension's own weights are unused).

    python train_net.py --config-file projects/EFPN/configs/tt100k_R50_oracle_p2_2x.py
"""

from net_detr2_projects.EFPN.efpn import use_teacher_p2

from .tt100k_R50_stage3_p2head import dataloader, lr_multiplier, model, optimizer, train

use_teacher_p2(model=model, dataloader=dataloader)
train.init_checkpoint = "./output/efpn/tt100k_R50/stage1/model_final.pth"
train.output_dir = "./output/efpn/tt100k_R50/oracle_p2_2x"
