"""Table V on TT100K, row P3-2800 (the FPN's P3 on the 2x image: the distillation target):
every RoI is pooled from that one map and classified by the base (FPN) head, instead of the pyramid and
P2'. Evaluation only, on stage 2's model:

    python train_net.py --config-file projects/EFPN/configs/tt100k_R50_table5_p3_2x.py --eval-only
"""

from net_detr2_projects.EFPN.efpn import detect_on_single_layer

from .tt100k_R50_stage2_distill import dataloader, lr_multiplier, model, optimizer, train

detect_on_single_layer(model=model, dataloader=dataloader, layer="p3_2x")
train.init_checkpoint = "./output/efpn/tt100k_R50/stage2/model_final.pth"
train.output_dir = "./output/efpn/tt100k_R50/table5_p3_2x"
