"""Table 2, VOC column, row 1 (paper: 78.2 mAP): RetinaNet R50-FPN trained on VOC 07+12 trainval, tested on
VOC2007 test, detectron2's VOC recipe (18k iterations at batch 16, LR 0.01 for the one-stage detector,
x0.1 at 12k and 16k), as `DCRetinaNet` with every switch off. The other VOC rows import this file.
"""

from net_detr2.model_zoo.configs.common.data.voc import dataloader
from net_detr2.model_zoo.configs.common.models.retinanet import model
from net_detr2.model_zoo.configs.common.optim import SGD as optimizer
from net_detr2.model_zoo.configs.common.train import train
from net_detr2.solver import multistep_with_warmup
from net_detr2_projects.DCRetinaNet.dc_retinanet.config_utils import use_dc_retinanet

model.num_classes = 20
train.init_checkpoint = "pretrained/R-50.pkl"
train.max_iter = 18000
optimizer.lr = 0.01
lr_multiplier = multistep_with_warmup(max_iter=18000, steps=(12000, 16000), warmup_iters=100, warmup_factor=0.001)
dataloader.train.total_batch_size = 16

use_dc_retinanet(model, iac_assignment=False, dc_loss=False, cl_nms=False)
train.output_dir = "./output/dc_retinanet/voc0712_R50_baseline"
