"""Common training settings (``cfg.train``) and LR schedules (``cfg.lr_multiplier``).

Use ``from ..common.train import train`` and one of the schedules, e.g.
``from ..common.train import lr_multiplier_1x as lr_multiplier``. The schedules are in iterations
of a 90k-iteration (COCO "1x", batch 16) run; for other lengths build one with
``net_detr2.solver.multistep_with_warmup(max_iter, steps)`` / ``cosine_with_warmup(max_iter)``.
"""

import torch

from net_detr2.solver import cosine_with_warmup, multistep_with_warmup

train = dict(
    output_dir="./output",
    init_checkpoint="",
    max_iter=90000,
    amp=dict(enabled=False, precision="float16"),  # automatic mixed precision (CUDA only; or "bfloat16")
    ddp=dict(  # DistributedDataParallel options
        broadcast_buffers=False,
        find_unused_parameters=False,
        fp16_compression=False,
    ),
    checkpointer=dict(period=5000, max_to_keep=100),  # PeriodicCheckpointer options
    eval_period=5000,
    log_period=20,
    device="cuda" if torch.cuda.is_available() else "cpu",
    seed=-1,  # < 0: random; otherwise seed + rank for every process
    clip_grad=None,  # or dict(max_norm=..., norm_type=2.0)
    trainable_params=None,  # or a list of regexes (re.match on parameter names): only those train
    num_vis_images=0,  # after training, draw predictions on this many test images
    best_checkpointer=None,  # or dict(val_metric="bbox/AP", mode="max")
    val_period=0,  # > 0 with cfg.dataloader.val: record validation losses every val_period iterations
    tensorboard=True,
    plot_curves=True,  # after training: output_dir/curves.png from metrics.json
    cudnn_benchmark=False,
)

# Multi-step: x0.1 at 60k and 80k of 90k, linear warm-up over 1000 iterations from 0.001.
lr_multiplier_1x = multistep_with_warmup(max_iter=90000, steps=(60000, 80000), warmup_iters=1000, warmup_factor=0.001)
lr_multiplier_3x = multistep_with_warmup(
    max_iter=270000, steps=(210000, 250000), warmup_iters=1000, warmup_factor=0.001
)
# Cosine decay to 0 over the whole run after the same warm-up.
lr_multiplier_cosine = cosine_with_warmup(max_iter=90000, warmup_iters=1000, warmup_factor=0.001)


def on_one_gpu(
    dataloader,
    optimizer,
    train,
    *,
    max_iter: int,
    batch_size: int,
    lr: float,
    warmup_iters: int,
    warmup_factor: float = 0.001,
    period: int = 1000,
):
    """Turn a CPU recipe into a longer one for one GPU, in place: batch size, LR, 4 loader workers, mixed
    precision, evaluation/checkpoint period. Returns its LR schedule: warm-up, x0.1 at 80% and 93%."""
    dataloader.train.total_batch_size = batch_size
    dataloader.train.num_workers = 4
    dataloader.test.num_workers = 2
    optimizer.lr = lr
    train.device = "cuda"
    train.amp.enabled = True
    train.max_iter = max_iter
    train.eval_period = period
    train.checkpointer.period = period
    return multistep_with_warmup(
        max_iter=max_iter,
        steps=(int(max_iter * 0.8), int(max_iter * 0.93)),
        warmup_iters=warmup_iters,
        warmup_factor=warmup_factor,
    )
