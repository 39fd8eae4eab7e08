"""Table 2 on `shapes`, row 3: + IAC score + DC loss; otherwise retinanet_R18_FPN_baseline.py."""

from net_detr2_projects.DCRetinaNet.dc_retinanet.config_utils import use_dc_retinanet

from .retinanet_R18_FPN_baseline import dataloader, lr_multiplier, model, optimizer, train

use_dc_retinanet(model, iac_assignment=True, dc_loss=True, cl_nms=False)
train.output_dir = "./output/dc_retinanet/shapes_iac_dc"
