"""`faster_rcnn_R18_FPN.py` with a schedule for one GPU: batch 16, 6000 iterations (~214 epochs of the 448
photos; the CPU recipe sees ~16), AdamW at 2e-3, LR steps at 80% / 93%, 4 loader workers, mixed precision.
Same model and data.

    python train_net.py --config-file configs/aquarium/faster_rcnn_R18_FPN_gpu.py
"""

from ..common.train import on_one_gpu
from .faster_rcnn_R18_FPN import dataloader, model, optimizer, train

lr_multiplier = on_one_gpu(dataloader, optimizer, train, max_iter=6000, batch_size=16, lr=2e-3, warmup_iters=300)
train.output_dir = "./output/aquarium/faster_rcnn_R18_FPN_gpu"
