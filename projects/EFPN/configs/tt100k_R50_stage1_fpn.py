"""EFPN stage 1 on Tsinghua-Tencent 100K (45 classes, 1400 px): the Faster R-CNN R50-FPN baseline.

Data: ``configs/common/data/tt100k.py`` (1400 short side, no flip, batch 8); evaluation with
`TT100KEvaluator` (accuracy/recall/F1 per size bin + COCO box AP/AR). Schedule (ours; the paper gives
none): 60k iterations at batch 8, LR 0.01, x0.1 at 40k and 53k, from ImageNet R-50.

    python train_net.py --config-file projects/EFPN/configs/tt100k_R50_stage1_fpn.py
"""

from net_detr2.model_zoo.configs.common.data.tt100k import dataloader
from net_detr2.model_zoo.configs.common.models.faster_rcnn_fpn import model
from net_detr2.model_zoo.configs.common.optim import SGD as optimizer
from net_detr2.model_zoo.configs.common.train import train
from net_detr2.solver import multistep_with_warmup

NUM_CLASSES = 45
MAX_ITER = 60000

model.roi_heads.num_classes = NUM_CLASSES
train.init_checkpoint = "pretrained/R-50.pkl"
train.max_iter = MAX_ITER
train.eval_period = 20000
optimizer.lr = 0.01
lr_multiplier = multistep_with_warmup(max_iter=MAX_ITER, steps=(40000, 53000), warmup_iters=1000, warmup_factor=0.001)
train.output_dir = "./output/efpn/tt100k_R50/stage1"
