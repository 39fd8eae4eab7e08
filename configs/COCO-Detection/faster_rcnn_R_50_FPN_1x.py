"""Faster R-CNN R50-FPN on COCO 2017, detectron2's 1x schedule: 90k iterations at batch 16, LR 0.02,
x0.1 at 60k and 80k, 1000 warm-up iterations.

``train.init_checkpoint`` is a local file: detectron2's ImageNet-pretrained MSRA ResNet-50
(``ImageNetPretrained/MSRA/R-50.pkl`` of the detectron2 model zoo, BGR input, stride in the 1x1 conv),
downloaded by hand to ``pretrained/R-50.pkl``; the .pkl is read with a restricted unpickler.
"""

from ..common.data.coco import dataloader
from ..common.models.faster_rcnn_fpn import model
from ..common.optim import SGD as optimizer
from ..common.train import lr_multiplier_1x as lr_multiplier
from ..common.train import train

train.init_checkpoint = "pretrained/R-50.pkl"
train.max_iter = 90000
optimizer.lr = 0.02
dataloader.train.total_batch_size = 16
