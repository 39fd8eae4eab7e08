#!/usr/bin/env python
"""Train or evaluate a detector described by a LazyConfig.

    python train_net.py --config-file projects/X/configs/y.py [--num-gpus N] [--resume] [key=value ...]
    python train_net.py --config-file cfg.py --eval-only train.init_checkpoint=/path/model_final.pth

Flags and ``key=value`` overrides may come in any order. Flow: load the config and apply the overrides,
``default_setup`` (checks, output dir, logs, saved config.yaml), then either evaluate (``--eval-only``:
``evaluate_checkpoint``, of ``train.init_checkpoint`` or with ``--resume`` the run's last checkpoint) or
build a ``DefaultTrainer``, resume / load weights and train (with periodic and final evaluation and
``train.num_vis_images`` prediction images). ``--num-gpus N`` starts N processes (N CPU processes when CUDA
is unavailable).
"""

from __future__ import annotations

from net_detr2.config import LazyConfig
from net_detr2.engine import DefaultTrainer, default_argument_parser, default_setup, evaluate_checkpoint, launch
from net_detr2.utils import comm


def main(args):
    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    default_setup(cfg, args)

    if args.eval_only:
        # train.init_checkpoint, or with --resume the run's last checkpoint (its average of the weights with train.ema)
        evaluated = evaluate_checkpoint(cfg, resume=args.resume)
        if cfg.train.num_vis_images > 0 and comm.is_main_process():
            DefaultTrainer.visualize(cfg, evaluated.model, cfg.train.num_vis_images)
        return evaluated.results

    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def invoke_main() -> None:
    args = default_argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


if __name__ == "__main__":
    invoke_main()
