"""Table III's "FPN-1x + P2-2x" on `shapes`: the extended level P2' is the stage-1 FPN's P2 on the image at 2x
(training and test), and the P2' head is fine-tuned on it exactly as in stage 3. The ceiling of what FTT +
distillation can give P2' on this data (see ``tt100k_R50_oracle_p2_2x.py``).

    OMP_NUM_THREADS=1 python train_net.py --config-file projects/EFPN/configs/shapes_oracle_p2_2x.py
"""

from net_detr2_projects.EFPN.efpn import use_teacher_p2

from .shapes_stage3_p2head import dataloader, lr_multiplier, model, optimizer, train

use_teacher_p2(model=model, dataloader=dataloader)
train.init_checkpoint = "./output/shapes_frcnn/model_final.pth"
train.output_dir = "./output/efpn/shapes/oracle_p2_2x"
