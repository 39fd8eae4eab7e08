"""Inverted Attention on the `shapes` Faster R-CNN R18-FPN baseline (configs/shapes/faster_rcnn_R18_FPN.py).

Identical to the baseline (model, data, schedule, seed) except that the ROI heads are `IAROIHeads` with
the defaults of projects/InvertedAttention/README.md (soft threshold 1/3, spatial, probability-drop RoI
choice of 1/5 foreground and 1/30 background RoIs).

    OMP_NUM_THREADS=2 python train_net.py \\
        --config-file projects/InvertedAttention/configs/shapes/ia_faster_rcnn_R18_FPN_shapes.py \\
        train.output_dir=output/shapes_ia_frcnn
"""

from net_detr2.model_zoo.configs.shapes.faster_rcnn_R18_FPN import dataloader, lr_multiplier, model, optimizer, train
from net_detr2_projects.InvertedAttention.inverted_attention.config_utils import use_inverted_attention

use_inverted_attention(model.roi_heads)
train.output_dir = "./output/shapes_ia_frcnn"
