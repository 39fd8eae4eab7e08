"""`faster_rcnn_R18_FPN_shapes_short.py` (500-iteration shapes baseline) with `IAROIHeads` (our defaults)."""
from projects.InvertedAttention.inverted_attention.config_utils import use_inverted_attention

from .faster_rcnn_R18_FPN_shapes_short import dataloader, lr_multiplier, model, optimizer, train

use_inverted_attention(model.roi_heads)
train.output_dir = "./output/shapes_ia_frcnn_short"
