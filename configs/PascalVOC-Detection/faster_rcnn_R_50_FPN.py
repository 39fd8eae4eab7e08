"""Faster R-CNN R50-FPN on Pascal VOC 07+12 trainval, tested on VOC2007 test (detectron2's VOC recipe):
20 classes, 18k iterations at batch 16, LR 0.02, x0.1 at 12k and 16k, 100 warm-up iterations.

``train.init_checkpoint``: the ImageNet-pretrained MSRA ResNet-50 as a local file (see
../COCO-Detection/faster_rcnn_R_50_FPN_1x.py).
"""

from net_detr2.solver import multistep_with_warmup

from ..common.data.voc import dataloader
from ..common.models.faster_rcnn_fpn import model
from ..common.optim import SGD as optimizer
from ..common.train import train

model.roi_heads.num_classes = 20

train.init_checkpoint = "pretrained/R-50.pkl"
train.max_iter = 18000
optimizer.lr = 0.02
lr_multiplier = multistep_with_warmup(max_iter=18000, steps=(12000, 16000), warmup_iters=100, warmup_factor=0.001)
dataloader.train.total_batch_size = 16
