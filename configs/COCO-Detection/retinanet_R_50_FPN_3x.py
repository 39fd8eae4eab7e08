"""RetinaNet R50-FPN on COCO 2017, detectron2's 3x schedule: 270k iterations, x0.1 at 210k and 250k."""

from ..common.train import lr_multiplier_3x as lr_multiplier
from .retinanet_R_50_FPN_1x import dataloader, model, optimizer, train

train.max_iter = 270000
