"""`shapes_stage2_distill.py` with SGD (LR 0.01, momentum 0.9, weight decay 1e-4) instead of stage 1's AdamW:
the other arm of the stage-optimizer probe in the EFPN README ("Stage learning rates").

    OMP_NUM_THREADS=1 python train_net.py --config-file projects/EFPN/configs/shapes_stage2_distill_sgd.py
"""

from net_detr2.model_zoo.configs.common.optim import SGD as optimizer

from .shapes_stage2_distill import dataloader, lr_multiplier, model, train

optimizer.lr = 0.01
train.output_dir = "./output/efpn/shapes/stage2_sgd"
