"""Table 4, "Faster+IA(ours) 07 ResNet101": `faster_rcnn_R101_FPN_voc07.py` with `IAROIHeads`
(paper: 75.1 -> 76.5 mAP).
"""

from net_detr2_projects.InvertedAttention.inverted_attention.config_utils import use_inverted_attention

from .faster_rcnn_R101_FPN_voc07 import dataloader, lr_multiplier, model, optimizer, train

use_inverted_attention(model.roi_heads)
train.output_dir = "./output/voc07_ia_frcnn_R101_FPN"
