"""Table 2 on `shapes`, row 4: + IAC score + DC loss + CL-balanced NMS (the full method); otherwise
retinanet_R18_FPN_baseline.py.
"""

from net_detr2_projects.DCRetinaNet.dc_retinanet.config_utils import use_dc_retinanet

from .retinanet_R18_FPN_baseline import dataloader, lr_multiplier, model, optimizer, train

use_dc_retinanet(model, iac_assignment=True, dc_loss=True, cl_nms=True)
train.output_dir = "./output/dc_retinanet/shapes_iac_dc_cl"
