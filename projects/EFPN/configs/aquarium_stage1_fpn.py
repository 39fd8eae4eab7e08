"""EFPN stage 1 on the Aquarium photos: the FPN baseline, exactly ``configs/aquarium/faster_rcnn_R18_FPN.py``
(from scratch, ~20 min on 2 CPU cores), writing to that recipe's own output directory so that an existing
run there serves as stage 1.

    OMP_NUM_THREADS=2 python train_net.py --config-file projects/EFPN/configs/aquarium_stage1_fpn.py
"""

from net_detr2.model_zoo.configs.aquarium.faster_rcnn_R18_FPN import dataloader, lr_multiplier, model, optimizer, train

train.output_dir = "./output/aquarium/faster_rcnn_R18_FPN"
