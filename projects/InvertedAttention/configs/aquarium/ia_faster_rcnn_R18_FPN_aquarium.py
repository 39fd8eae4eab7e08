"""Inverted Attention on the Aquarium Faster R-CNN R18-FPN recipe (configs/aquarium/faster_rcnn_R18_FPN.py):
identical model, data, schedule and seed, with `IAROIHeads` at the defaults of the project README.

    OMP_NUM_THREADS=2 python train_net.py \\
        --config-file projects/InvertedAttention/configs/aquarium/ia_faster_rcnn_R18_FPN_aquarium.py
"""

from net_detr2.model_zoo.configs.aquarium.faster_rcnn_R18_FPN import dataloader, lr_multiplier, model, optimizer, train
from net_detr2_projects.InvertedAttention.inverted_attention.config_utils import use_inverted_attention

use_inverted_attention(model.roi_heads)
train.output_dir = "./output/aquarium/ia_faster_rcnn_R18_FPN"
