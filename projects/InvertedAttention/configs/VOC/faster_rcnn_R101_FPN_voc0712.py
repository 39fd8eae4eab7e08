"""Baseline of Table 4, "Faster [15] 07+12 ResNet101" (paper: 76.4 mAP; with IA 81.1): as
`faster_rcnn_R101_FPN_voc07.py` with the 07+12 data and schedule of `faster_rcnn_VGG16_voc0712.py`."""

from .faster_rcnn_R101_FPN_voc07 import model
from .faster_rcnn_VGG16_voc0712 import dataloader, lr_multiplier, optimizer, train

train.init_checkpoint = "pretrained/R-101.pkl"
train.output_dir = "./output/voc0712_frcnn_R101_FPN"
