"""`netnet300_aquarium.py` with a schedule for one GPU: batch 32 (the paper's), 12000 iterations (~860 epochs
of the 448 photos: SSD from scratch needs hundreds), AdamW at 2e-3, LR steps at 80% / 93%, 4 loader workers,
mixed precision. Same model and data.

    python train_net.py --config-file projects/NETNet/configs/netnet300_aquarium_gpu.py
"""

from net_detr2.model_zoo.configs.common.train import on_one_gpu

from .netnet300_aquarium import dataloader, model, optimizer, train

lr_multiplier = on_one_gpu(
    dataloader,
    optimizer,
    train,
    max_iter=12000,
    batch_size=32,
    lr=2e-3,
    warmup_iters=500,
    warmup_factor=0.01,
    period=2000,
)
train.output_dir = "./output/aquarium/netnet300_gpu"
