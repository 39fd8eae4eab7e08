"""EFPN stage 1 on COCO: the Faster R-CNN R50-FPN 1x baseline, the same settings as
``configs/COCO-Detection/faster_rcnn_R_50_FPN_1x.py`` (90k iterations, batch 16, LR 0.02, short side
640..800, test at 800; ImageNet R-50 from ``pretrained/R-50.pkl``).

Instead of training it, a detectron2 model-zoo checkpoint can serve as stage 1: pass it to stage 2 as
``train.init_checkpoint=/path/to/model_final_b275ba.pkl`` (COCO-Detection/faster_rcnn_R_50_FPN_1x).

    python train_net.py --config-file projects/EFPN/configs/coco_R50_stage1_fpn.py
"""

from net_detr2.model_zoo.configs.common.data.coco import dataloader
from net_detr2.model_zoo.configs.common.models.faster_rcnn_fpn import model
from net_detr2.model_zoo.configs.common.optim import SGD as optimizer
from net_detr2.model_zoo.configs.common.train import lr_multiplier_1x as lr_multiplier
from net_detr2.model_zoo.configs.common.train import train

train.init_checkpoint = "pretrained/R-50.pkl"
train.max_iter = 90000
optimizer.lr = 0.02
dataloader.train.total_batch_size = 16
train.output_dir = "./output/efpn/coco_R50/stage1"
