"""Table 2 on `shapes`, the DC loss alone (not a row of the paper's table; each component's own effect);
otherwise retinanet_R18_FPN_baseline.py."""

from net_detr2_projects.DCRetinaNet.dc_retinanet.config_utils import use_dc_retinanet

from .retinanet_R18_FPN_baseline import dataloader, lr_multiplier, model, optimizer, train

use_dc_retinanet(model, iac_assignment=False, dc_loss=True, cl_nms=False)
train.output_dir = "./output/dc_retinanet/shapes_dc"
