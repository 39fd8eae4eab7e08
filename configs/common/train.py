"""Common training settings (``cfg.train``) and LR schedules (``cfg.lr_multiplier``).

Every key ``DefaultTrainer`` reads is here, with its default: the trainer has no hidden defaults of its own.
Use ``from ..common.train import train`` and one of the schedules, e.g.
``from ..common.train import lr_multiplier_1x as lr_multiplier``. The schedules are in iterations
of a 90k-iteration (COCO "1x", batch 16) run; for other lengths build one with
``net_detr2.solver.multistep_with_warmup(max_iter, steps)`` / ``cosine_with_warmup(max_iter)``.
"""

import torch

from net_detr2.config import default_output_dir
from net_detr2.solver import cosine_with_warmup, multistep_with_warmup

train = dict(
    # Checkpoints, logs, metrics.json, curves and predictions. The default is a folder of each config's own:
    # output/<path of the config file given to train_net.py, without .py>, relative to the current folder,
    # e.g. --config-file configs/shapes/faster_rcnn_R18_FPN.py -> output/configs/shapes/faster_rcnn_R18_FPN
    # (net_detr2.config.default_output_dir). A fresh run refuses a folder that already holds a run: continue it
    # with --resume, choose another train.output_dir, or replace it with --overwrite.
    output_dir=default_output_dir(),
    init_checkpoint="",  # weights loaded before training (not on --resume when output_dir has a checkpoint)
    max_iter=90000,
    # Mixed precision for training and evaluation: dtype "bfloat16" (CUDA, or a CPU with bf16 units; a CPU
    # without them warns once and runs fp32) or "float16" (CUDA only, with a gradient scaler).
    amp=dict(enabled=False, dtype="bfloat16"),
    ddp=dict(  # DistributedDataParallel options (several processes only)
        # after every step all ranks take rank 0's buffers (BatchNorm statistics), so every rank evaluates
        # and saves the same model; False leaves each rank its own (then use norm="SyncBN" for training BN)
        broadcast_buffers=True,
        find_unused_parameters=False,
        fp16_compression=False,
    ),
    # Seconds a collective operation (gradient all-reduce, metric gather, barrier) may wait for the other
    # processes before the run stops with an error naming the rank and the operation.
    dist_timeout_s=600,
    checkpointer=dict(period=5000, max_to_keep=100),  # a checkpoint every `period` iterations; keep the newest
    eval_period=5000,  # evaluate on dataloader.test every eval_period iterations (0: only after training)
    # console / metrics.json / TensorBoard every log_period iterations, and early on at iterations 1, 2, 5, 10,
    # 20, 50, ... below it, so that the first progress line (losses, ETA) comes after the first iteration
    log_period=20,
    device="cuda" if torch.cuda.is_available() else "cpu",
    # < 0: a random seed (logged). Otherwise every process seeds python, numpy and torch with seed + rank before
    # building the model, and the data order and augmentation follow it too: the same seed repeats a run
    # exactly, another seed changes weights init, data order, augmentation and RoI/anchor sampling.
    seed=-1,
    clip_grad=None,  # or dict(max_norm=..., norm_type=2.0)
    trainable_params=None,  # or a list of regexes (re.match on parameter names): only those train
    num_vis_images=0,  # after training, draw predictions on this many test images
    best_checkpointer=None,  # or dict(val_metric="bbox/AP", mode="max"): model_best.pth at every better eval
    val_period=0,  # > 0 with cfg.dataloader.val: record validation losses every val_period iterations
    val_batches=10,  # batches of cfg.dataloader.val averaged for each validation loss
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
