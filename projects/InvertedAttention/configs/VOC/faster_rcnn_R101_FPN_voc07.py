"""Baseline of Table 4, "Faster [15] 07 ResNet101" (paper: 75.1 mAP; with IA 76.5), as an R101-FPN Faster
R-CNN (our choice: the paper's ResNet-101 Faster R-CNN pools from res4 and runs res5 as the box head,
which net_detr2 does not provide; IA acts on the pooled features either way). Same data and recipe as
`faster_rcnn_VGG16_voc07.py`: VOC2007 trainval, batch 2, LR 2e-3 for 6 epochs then 2e-4 for 2, short
side 600 (max 1000).

``train.init_checkpoint``: detectron2's ``ImageNetPretrained/MSRA/R-101.pkl`` as ``pretrained/R-101.pkl``.
"""

from net_detr2.model_zoo.configs.common.models.faster_rcnn_fpn import model

from .faster_rcnn_VGG16_voc07 import NUM_CLASSES, dataloader, lr_multiplier, optimizer, train

model.backbone.bottom_up.depth = 101
model.roi_heads.num_classes = NUM_CLASSES
model.roi_heads.box_predictor.test_score_thresh = 0.05
train.init_checkpoint = "pretrained/R-101.pkl"
train.output_dir = "./output/voc07_frcnn_R101_FPN"
