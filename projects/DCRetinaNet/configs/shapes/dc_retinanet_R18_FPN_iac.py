"""Table 2 on `shapes`, row 2: + IAC score; otherwise retinanet_R18_FPN_baseline.py."""

from net_detr2_projects.DCRetinaNet.dc_retinanet.config_utils import use_dc_retinanet

from .retinanet_R18_FPN_baseline import dataloader, lr_multiplier, model, optimizer, train

use_dc_retinanet(model, iac_assignment=True, dc_loss=False, cl_nms=False)
train.output_dir = "./output/dc_retinanet/shapes_iac"
