"""CL-balanced NMS as drop-in post-processing of another detector: Faster R-CNN R50-FPN COCO 1x (the same
settings as configs/COCO-Detection/faster_rcnn_R_50_FPN_1x.py) with the box predictor's per-class NMS
replaced by CL-balanced NMS (beta = 1). Evaluate existing Faster R-CNN weights with it:

    python train_net.py --eval-only \\
        --config-file projects/DCRetinaNet/configs/drop_in/faster_rcnn_R50_FPN_1x_cl_nms.py \\
        train.init_checkpoint=/path/to/faster_rcnn_R50_FPN_1x.pth
"""

from net_detr2.config import LazyCall as L
from net_detr2.model_zoo.configs.common.data.coco import dataloader
from net_detr2.model_zoo.configs.common.models.faster_rcnn_fpn import model
from net_detr2.model_zoo.configs.common.optim import SGD as optimizer
from net_detr2.model_zoo.configs.common.train import lr_multiplier_1x as lr_multiplier
from net_detr2.model_zoo.configs.common.train import train
from net_detr2_projects.DCRetinaNet.dc_retinanet.cl_balanced_nms import CLBalancedNMS

train.init_checkpoint = "pretrained/R-50.pkl"
train.max_iter = 90000
optimizer.lr = 0.02
dataloader.train.total_batch_size = 16

model.roi_heads.box_predictor.test_nms = L(CLBalancedNMS)(beta=1.0)
train.output_dir = "./output/dc_retinanet/faster_rcnn_R50_FPN_1x_cl_nms"
