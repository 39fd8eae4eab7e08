"""Table 6, "Faster-RCNN*+IA ResNet50-FPN 1x": `faster_rcnn_R50_FPN_1x.py` with `IAROIHeads`
(paper: 36.2 -> 38.3 AP).
"""

from net_detr2_projects.InvertedAttention.inverted_attention.config_utils import use_inverted_attention

from .faster_rcnn_R50_FPN_1x import dataloader, lr_multiplier, model, optimizer, train

use_inverted_attention(model.roi_heads)
train.output_dir = "./output/coco_ia_frcnn_R50_FPN_1x"
