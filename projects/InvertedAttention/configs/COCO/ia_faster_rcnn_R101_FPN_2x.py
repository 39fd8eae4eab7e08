"""Table 6, "Faster-RCNN*+IA ResNet101-FPN 2x": `faster_rcnn_R101_FPN_2x.py` with `IAROIHeads`
(paper: 39.7 -> 40.8 AP).
"""

from net_detr2_projects.InvertedAttention.inverted_attention.config_utils import use_inverted_attention

from .faster_rcnn_R101_FPN_2x import dataloader, lr_multiplier, model, optimizer, train

use_inverted_attention(model.roi_heads)
train.output_dir = "./output/coco_ia_frcnn_R101_FPN_2x"
