"""Table 4, "Faster+IA(ours) 07 VGG16": `faster_rcnn_VGG16_voc07.py` with `IAROIHeads` (paper: 69.9 -> 71.1 mAP)."""

from net_detr2_projects.InvertedAttention.inverted_attention.config_utils import use_inverted_attention

from .faster_rcnn_VGG16_voc07 import dataloader, lr_multiplier, model, optimizer, train

use_inverted_attention(model.roi_heads)
train.output_dir = "./output/voc07_ia_frcnn_VGG16"
