"""Table 2, VOC column, row 4: RetinaNet R50-FPN VOC 07+12 + IAC + DC loss + CL-balanced NMS
(paper: 79.7 mAP); otherwise retinanet_R50_FPN_voc0712_baseline.py.
"""

from net_detr2_projects.DCRetinaNet.dc_retinanet.config_utils import use_dc_retinanet

from .retinanet_R50_FPN_voc0712_baseline import dataloader, lr_multiplier, model, optimizer, train

use_dc_retinanet(model, iac_assignment=True, dc_loss=True, cl_nms=True)
train.output_dir = "./output/dc_retinanet/voc0712_R50_iac_dc_cl"
