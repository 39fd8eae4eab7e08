"""Baseline of Table 6: Faster R-CNN R50-FPN on COCO 2017, 1x schedule (90k iterations at batch 16,
LR 0.02, x0.1 at 60k and 80k; the paper's 8 + 3 + 1 epochs). `ia_faster_rcnn_R50_FPN_1x.py` is this file
with `IAROIHeads`.

``train.init_checkpoint``: detectron2's ImageNet-pretrained MSRA ResNet-50 (``ImageNetPretrained/MSRA/R-50.pkl``),
downloaded by hand to ``pretrained/R-50.pkl``.
"""

from net_detr2.model_zoo.configs.common.data.coco import dataloader
from net_detr2.model_zoo.configs.common.models.faster_rcnn_fpn import model
from net_detr2.model_zoo.configs.common.optim import SGD as optimizer
from net_detr2.model_zoo.configs.common.train import lr_multiplier_1x as lr_multiplier
from net_detr2.model_zoo.configs.common.train import train

train.init_checkpoint = "pretrained/R-50.pkl"
train.max_iter = 90000
train.output_dir = "./output/coco_frcnn_R50_FPN_1x"
optimizer.lr = 0.02
dataloader.train.total_batch_size = 16
