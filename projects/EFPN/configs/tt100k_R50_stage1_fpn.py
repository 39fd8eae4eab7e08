"""EFPN stage 1 on Tsinghua-Tencent 100K (45 classes, 1400 px): the Faster R-CNN R50-FPN baseline.

Data: ``configs/common/data/tt100k.py`` (1400 short side, no flip, batch 8) with the paper's protocol
(`net_detr2_projects.EFPN.efpn.tt100k_protocol`): the signs outside the 45 classes train as a 46th class
"other" (``LABEL_SET``; "45" for the 45 labels only), classes are repeated to about 1000 instances per epoch
(``BALANCE_INSTANCES``; None for no balancing) with random crops and colour jitter. Stages 2 and 3 inherit
it. Evaluation on the 45 classes with `TT100KEvaluator` (accuracy/recall/F1 per size bin + COCO box
AP/AR). Schedule (ours; the paper gives none): 60k iterations at batch 8, SGD LR 0.01, x0.1 at 40k and
53k, from ImageNet R-50.

    python train_net.py --config-file projects/EFPN/configs/tt100k_R50_stage1_fpn.py
"""

from net_detr2.model_zoo.configs.common.data.tt100k import dataloader
from net_detr2.model_zoo.configs.common.models.faster_rcnn_fpn import model
from net_detr2.model_zoo.configs.common.optim import SGD as optimizer
from net_detr2.model_zoo.configs.common.train import train
from net_detr2.solver import multistep_with_warmup
from net_detr2_projects.EFPN.efpn import tt100k_protocol

LABEL_SET = "45+other"
BALANCE_INSTANCES = 1000
MAX_ITER = 60000

tt100k_protocol(model=model, dataloader=dataloader, label_set=LABEL_SET, balance_instances=BALANCE_INSTANCES)
train.init_checkpoint = "pretrained/R-50.pkl"
train.max_iter = MAX_ITER
train.eval_period = 20000
optimizer.lr = 0.01
lr_multiplier = multistep_with_warmup(max_iter=MAX_ITER, steps=(40000, 53000), warmup_iters=1000, warmup_factor=0.001)
train.output_dir = "./output/efpn/tt100k_R50/stage1"
