"""Table 2, row 1 (baseline): RetinaNet R50-FPN on COCO 2017, 1x schedule — the same settings as
configs/COCO-Detection/retinanet_R_50_FPN_1x.py (90k iterations at batch 16, LR 0.01, x0.1 at 60k/80k,
ImageNet R-50 from ``pretrained/R-50.pkl``), built as `DCRetinaNet` with every switch off, which is
numerically `RetinaNet` (tested), so the four rows share one code path. The other rows import this file.

    python train_net.py --config-file projects/DCRetinaNet/configs/COCO/retinanet_R50_FPN_1x_baseline.py --num-gpus 8
"""

# (configs/COCO-Detection/ has a '-' in its name, so it cannot be imported; its four settings are repeated)
from net_detr2.model_zoo.configs.common.data.coco import dataloader
from net_detr2.model_zoo.configs.common.models.retinanet import model
from net_detr2.model_zoo.configs.common.optim import SGD as optimizer
from net_detr2.model_zoo.configs.common.train import lr_multiplier_1x as lr_multiplier
from net_detr2.model_zoo.configs.common.train import train
from net_detr2_projects.DCRetinaNet.dc_retinanet.config_utils import use_dc_retinanet

train.init_checkpoint = "pretrained/R-50.pkl"
train.max_iter = 90000
optimizer.lr = 0.01
dataloader.train.total_batch_size = 16

use_dc_retinanet(model, iac_assignment=False, dc_loss=False, cl_nms=False)
train.output_dir = "./output/dc_retinanet/coco_R50_1x_baseline"
