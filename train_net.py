#!/usr/bin/env python
"""Train or evaluate a detector described by a LazyConfig.

    python train_net.py --config-file projects/X/configs/y.py [--num-gpus N] [--resume] [key=value ...]
    python train_net.py --config-file cfg.py --eval-only train.init_checkpoint=/path/model_final.pth

Flow: load the config and apply the overrides, ``default_setup`` (output dir, logs, saved
config.yaml, seeding), then either evaluate ``train.init_checkpoint`` (``--eval-only``) or build a
``DefaultTrainer``, resume / load weights, train (with periodic and final evaluation), and draw
``train.num_vis_images`` prediction images. ``--num-gpus N`` starts N processes (N CPU processes
when CUDA is unavailable).
"""

from __future__ import annotations

import logging

from net_detr2.checkpoint import DetectionCheckpointer
from net_detr2.config import LazyConfig, instantiate
from net_detr2.engine import DefaultTrainer, create_ddp_model, default_argument_parser, default_setup, launch
from net_detr2.utils import comm

logger = logging.getLogger("net_detr2")


def do_test(cfg, model):
    """Evaluate ``model`` with ``cfg.dataloader.test``/``evaluator``; returns the results dict."""
    return DefaultTrainer.test(cfg, model)


def main(args):
    cfg = LazyConfig.load(args.config_file)
    cfg = LazyConfig.apply_overrides(cfg, args.opts)
    default_setup(cfg, args)

    if args.eval_only:
        model = instantiate(cfg.model)
        model.to(cfg.train.device)
        model = create_ddp_model(model)
        DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
        results = do_test(cfg, model)
        n_vis = int(cfg.train.get("num_vis_images", 0) or 0)
        if n_vis > 0 and comm.is_main_process():
            DefaultTrainer.visualize(cfg, model, n_vis)
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
