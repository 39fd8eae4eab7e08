"""Table 4, "Faster+IA(ours) 07+12 ResNet101": `faster_rcnn_R101_FPN_voc0712.py` with `IAROIHeads`
(paper: 76.4 -> 81.1 mAP).
"""

from net_detr2_projects.InvertedAttention.inverted_attention.config_utils import use_inverted_attention

from .faster_rcnn_R101_FPN_voc0712 import dataloader, lr_multiplier, model, optimizer, train

use_inverted_attention(model.roi_heads)
train.output_dir = "./output/voc0712_ia_frcnn_R101_FPN"
