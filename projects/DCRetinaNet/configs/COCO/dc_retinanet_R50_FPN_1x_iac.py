"""Table 2, row 2: RetinaNet R50-FPN COCO 1x + IAC score (paper: 36.4 AP); otherwise
retinanet_R50_FPN_1x_baseline.py.
"""

from net_detr2_projects.DCRetinaNet.dc_retinanet.config_utils import use_dc_retinanet

from .retinanet_R50_FPN_1x_baseline import dataloader, lr_multiplier, model, optimizer, train

use_dc_retinanet(model, iac_assignment=True, dc_loss=False, cl_nms=False)
train.output_dir = "./output/dc_retinanet/coco_R50_1x_iac"
