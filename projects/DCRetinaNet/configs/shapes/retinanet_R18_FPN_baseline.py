"""Table 2 on `shapes`, row 1 (baseline): configs/shapes/retinanet_R18_FPN.py (same model, data, seed,
optimizer and schedule, whatever that file sets) as `DCRetinaNet` with every switch off (numerically `RetinaNet`).

    OMP_NUM_THREADS=1 python train_net.py \\
        --config-file projects/DCRetinaNet/configs/shapes/retinanet_R18_FPN_baseline.py
"""

from net_detr2.model_zoo.configs.shapes.retinanet_R18_FPN import dataloader, lr_multiplier, model, optimizer, train
from net_detr2_projects.DCRetinaNet.dc_retinanet.config_utils import use_dc_retinanet

use_dc_retinanet(model, iac_assignment=False, dc_loss=False, cl_nms=False)
train.output_dir = "./output/dc_retinanet/shapes_baseline"
