"""RetinaNet R50-FPN on COCO 2017, detectron2's 1x schedule: 90k iterations at batch 16, LR 0.01,
x0.1 at 60k and 80k, 1000 warm-up iterations.

``train.init_checkpoint``: the ImageNet-pretrained MSRA ResNet-50 as a local file (see
faster_rcnn_R_50_FPN_1x.py).
"""

from ..common.data.coco import dataloader
from ..common.models.retinanet import model
from ..common.optim import SGD as optimizer
from ..common.train import lr_multiplier_1x as lr_multiplier
from ..common.train import train

train.init_checkpoint = "pretrained/R-50.pkl"
train.max_iter = 90000
optimizer.lr = 0.01
dataloader.train.total_batch_size = 16
