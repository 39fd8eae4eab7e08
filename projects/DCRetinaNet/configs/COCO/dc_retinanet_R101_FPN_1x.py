"""Table 1, "Ours ResNet-101" (paper, test-dev: 40.6 AP vs RetinaNet R101 39.1): the full method
(IAC + DC loss + CL-B NMS) on an R101-FPN, COCO 1x; ImageNet MSRA R-101 from ``pretrained/R-101.pkl``.
(The paper's RetinaNet R101 number is the 2x/multi-scale one of the RetinaNet paper; we keep the 1x recipe.)
"""

from net_detr2_projects.DCRetinaNet.dc_retinanet.config_utils import use_dc_retinanet

from .retinanet_R50_FPN_1x_baseline import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.depth = 101
train.init_checkpoint = "pretrained/R-101.pkl"
use_dc_retinanet(model, iac_assignment=True, dc_loss=True, cl_nms=True)
train.output_dir = "./output/dc_retinanet/coco_R101_1x"
