"""Baseline of Table 6: Faster R-CNN R101-FPN on COCO 2017, 1x schedule (as `faster_rcnn_R50_FPN_1x.py`,
ResNet-101). ``train.init_checkpoint``: detectron2's ``ImageNetPretrained/MSRA/R-101.pkl`` as ``pretrained/R-101.pkl``.
"""

from .faster_rcnn_R50_FPN_1x import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.depth = 101
train.init_checkpoint = "pretrained/R-101.pkl"
train.output_dir = "./output/coco_frcnn_R101_FPN_1x"
