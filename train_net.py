#!/usr/bin/env python
"""Train or evaluate a detector described by a LazyConfig.

    python train_net.py --config-file projects/X/configs/y.py [--num-gpus N] [--resume] [key=value ...]
    python train_net.py --config-file cfg.py --eval-only train.init_checkpoint=/path/model_final.pth

Flags and ``key=value`` overrides may come in any order. Flow: load the config and apply the overrides,
``default_setup`` (checks, output dir, logs, saved config.yaml), then either evaluate (``--eval-only``) or
build a ``DefaultTrainer``, resume / load weights and train (with periodic and final evaluation and
``train.num_vis_images`` prediction images). ``--num-gpus N`` starts N processes (N CPU processes when CUDA
is unavailable).
"""

from __future__ import annotations

from net_detr2.checkpoint import DetectionCheckpointer
from net_detr2.config import LazyConfig
from net_detr2.engine import DefaultTrainer, create_ddp_model, default_argument_parser, default_setup, launch
from net_detr2.utils import comm


def main(args):
    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    default_setup(cfg, args)

    if args.eval_only:
        model = create_ddp_model(DefaultTrainer.build_model(cfg))
        DetectionCheckpointer(model, cfg.train.output_dir).resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
        results = DefaultTrainer.test(cfg, model)
        if cfg.train.num_vis_images > 0 and comm.is_main_process():
            DefaultTrainer.visualize(cfg, model, cfg.train.num_vis_images)
        return results

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
