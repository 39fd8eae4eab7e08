"""The standard training set-up around a LazyConfig: argument parser, ``default_setup``,
``create_ddp_model``, ``default_writers`` and ``DefaultTrainer``."""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import logging
import os
import sys
from typing import Any

import torch
from omegaconf import DictConfig
from torch.nn.parallel import DistributedDataParallel

from net_detr2.checkpoint import DetectionCheckpointer, atomic_write
from net_detr2.config import LazyConfig, instantiate, locate
from net_detr2.solver import LRMultiplier, build_optimizer, freeze_parameters
from net_detr2.utils import comm
from net_detr2.utils.env import collect_env_info, seed_all_rng
from net_detr2.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter
from net_detr2.utils.logger import setup_logger

from . import hooks
from .train_loop import AMPTrainer, SimpleTrainer, TrainerBase

__all__ = [
    "default_argument_parser",
    "default_setup",
    "default_writers",
    "create_ddp_model",
    "write_final_results",
    "DefaultTrainer",
]

logger = logging.getLogger(__name__)


def default_argument_parser(epilog: str | None = None) -> argparse.ArgumentParser:
    """Arguments of ``train_net.py``; trailing ``key=value`` words are config overrides (``args.opts``)."""
    parser = argparse.ArgumentParser(
        epilog=epilog
        or (
            "Examples:\n"
            f"  {sys.argv[0]} --config-file cfg.py train.max_iter=100\n"
            f"  {sys.argv[0]} --config-file cfg.py --num-gpus 2\n"
            f"  {sys.argv[0]} --config-file cfg.py --eval-only train.init_checkpoint=model.pth\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to the config file (.py or .yaml)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="resume from the last checkpoint in train.output_dir (else load train.init_checkpoint)",
    )
    parser.add_argument("--eval-only", action="store_true", help="only evaluate train.init_checkpoint")
    parser.add_argument(
        "--num-gpus", type=int, default=1, help="processes per machine (GPUs; CPU processes when CUDA is unavailable)"
    )
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument("--machine-rank", type=int, default=0, help="the rank of this machine (unique per machine)")
    parser.add_argument(
        "--dist-url",
        default="auto",
        help="initialization URL for torch.distributed (tcp://<machine 0>:<port>); 'auto' meets in a "
        "temporary rendezvous file (single machine)",
    )
    parser.add_argument(
        "opts",
        default=None,
        nargs=argparse.REMAINDER,
        help="config overrides 'path.key=value', e.g. train.max_iter=100 model.num_classes=5",
    )
    return parser


def _get(node: Any, key: str, default: Any = None) -> Any:
    """``node.key`` for DictConfig/dict nodes, ``default`` when absent or ``None``."""
    if node is None:
        return default
    try:
        value = node.get(key, default)
    except AttributeError:
        value = getattr(node, key, default)
    return default if value is None else value


def default_setup(cfg: DictConfig, args: argparse.Namespace | None) -> None:
    """Output directory, loggers (console on rank 0, ``log.txt[.rankN]`` for every rank), environment
    info, the config saved as ``output_dir/config.yaml``, and seeding (``train.seed + rank``; a
    negative or missing seed draws a random one)."""
    output_dir = _get(cfg.train, "output_dir", "")
    rank = comm.get_rank()
    if output_dir and comm.is_main_process():
        os.makedirs(output_dir, exist_ok=True)
    comm.synchronize()
    setup_logger(output_dir or None, distributed_rank=rank, name="fvcore")
    log = setup_logger(output_dir or None, distributed_rank=rank)
    log.info(f"Rank of current process: {rank}. World size: {comm.get_world_size()}")
    log.info("Environment info:\n" + collect_env_info())
    if args is not None:
        log.info("Command line arguments: " + str(args))
        config_file = getattr(args, "config_file", "")
        if config_file:
            with open(config_file, encoding="utf-8") as f:
                log.info(f"Contents of args.config_file={config_file}:\n{f.read()}")
    if output_dir and comm.is_main_process():
        path = os.path.join(output_dir, "config.yaml")
        LazyConfig.save(cfg, path)
        log.info(f"Full config saved to {path}")
    seed = _get(cfg.train, "seed", -1)
    used = seed_all_rng(None if seed < 0 else seed + rank)
    log.info(f"Using seed {used}")
    if not (args is not None and getattr(args, "eval_only", False)):
        torch.backends.cudnn.benchmark = bool(_get(cfg.train, "cudnn_benchmark", False))


def default_writers(output_dir: str, max_iter: int | None = None, tensorboard: bool = True) -> list:
    """Console printer, ``output_dir/metrics.json`` and (optionally) TensorBoard event files."""
    writers = [CommonMetricPrinter(max_iter), JSONWriter(os.path.join(output_dir, "metrics.json"))]
    if tensorboard:
        writers.append(TensorboardXWriter(output_dir))
    return writers


def create_ddp_model(model: torch.nn.Module, *, fp16_compression: bool = False, **kwargs: Any) -> torch.nn.Module:
    """Wrap ``model`` in ``DistributedDataParallel`` when running with more than one process.

    ``kwargs`` go to DDP (e.g. ``broadcast_buffers=False``, ``find_unused_parameters=True``); on
    CUDA ``device_ids`` defaults to this process' local GPU.
    """
    if comm.get_world_size() == 1:
        return model
    if "device_ids" not in kwargs:
        try:
            is_cuda = next(model.parameters()).is_cuda
        except StopIteration:
            is_cuda = False
        if is_cuda:
            kwargs["device_ids"] = [comm.get_local_rank()]
    ddp = DistributedDataParallel(model, **kwargs)
    if fp16_compression:
        from torch.distributed.algorithms.ddp_comm_hooks import default as comm_hooks

        ddp.register_comm_hook(state=None, hook=comm_hooks.fp16_compress_hook)
    return ddp


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def _target_accepts(node: Any, arg: str) -> bool:
    """Whether the ``_target_`` of a LazyCall node has an explicit parameter named ``arg``."""
    if not isinstance(node, (DictConfig, dict)) or "_target_" not in node:
        return False
    target = node["_target_"]
    if isinstance(target, str):
        target = locate(target)
    try:
        return arg in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False


def _warn_schedule_length(node: Any, max_iter: int) -> None:
    """Warn when an LR schedule was written for a different run length than ``train.max_iter``.

    ``LRMultiplier`` evaluates the schedule at ``iter / max_iter``; a ``MultiStepParamScheduler``
    with ``num_updates != max_iter`` then moves its milestones proportionally, which after a
    ``train.max_iter=...`` override is rarely what was meant.
    """
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, (DictConfig, dict)):
            n = cur.get("num_updates", None)
            if isinstance(n, int) and n != max_iter:
                logger.warning(
                    f"cfg.lr_multiplier has num_updates={n} but train.max_iter={max_iter}: its milestones "
                    f"{list(cur.get('milestones', []))} are scaled by {max_iter}/{n}. Rebuild the schedule "
                    "(e.g. multistep_with_warmup(max_iter, steps)) if that is not intended."
                )
            stack.extend(v for k, v in cur.items() if k != "_target_")


FINAL_RESULTS_FILE = "final_results.json"


def write_final_results(output_dir: str, results: dict, max_iter: int, seed: int) -> str:
    """Write a finished run's final evaluation to ``output_dir/final_results.json`` (atomically):
    ``{"iteration": max_iter, "seed": seed, "results": {task: {metric: value}}}``. Its presence marks the
    run as complete (the multi-seed comparison, ``tools/compare.py``, skips such runs)."""
    path = os.path.join(output_dir, FINAL_RESULTS_FILE)
    record = {"iteration": int(max_iter), "seed": int(seed), "results": results}
    atomic_write(path, lambda f: json.dump(record, f, indent=1, default=float), mode="w")
    return path


class DefaultTrainer(TrainerBase):
    """Training driven by a LazyConfig (see ``DEVELOPERS.md`` for the keys).

    ``__init__`` builds the model (+ ``train.trainable_params`` freezing), optimizer, LR
    scheduler, DDP wrapper, checkpointer and hooks. ``resume_or_load`` loads weights (and on resume
    the optimizer/scheduler/grad-scaler state and iteration). ``train`` then builds the training
    data loader — *after* resuming, passing ``start_iter`` to loaders that accept it so a resumed
    run sees the same data order — and runs the loop. After training: the final evaluation (when
    ``cfg.dataloader.evaluator`` exists), ``curves.png`` and ``train.num_vis_images`` prediction
    images (``predictions/*.png``, tiled in ``predictions_grid.png``).
    """

    def __init__(self, cfg: DictConfig):
        super().__init__()
        self.cfg = cfg
        train_cfg = cfg.train
        if not logging.getLogger("net_detr2").handlers:
            setup_logger(distributed_rank=comm.get_rank())
        seed = _get(train_cfg, "seed", -1)
        if seed >= 0:
            # Same seed as default_setup; repeated here so DefaultTrainer(cfg) alone is reproducible.
            seed_all_rng(seed + comm.get_rank())

        model = instantiate(cfg.model)
        device = _get(train_cfg, "device", None)
        if device:
            model.to(device)
        n_train, n_frozen = freeze_parameters(model, _get(train_cfg, "trainable_params", None))
        n_train_el = sum(p.numel() for p in model.parameters() if p.requires_grad)
        n_frozen_el = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        logger.info(
            f"Trainable parameters: {n_train} tensors ({n_train_el:,} values); "
            f"frozen: {n_frozen} tensors ({n_frozen_el:,} values)"
        )
        optimizer = build_optimizer(cfg.optimizer, model)
        ddp_kwargs = dict(_get(train_cfg, "ddp", {}) or {})
        ddp_model = create_ddp_model(model, **ddp_kwargs)

        amp_cfg = _get(train_cfg, "amp", {})
        amp = bool(_get(amp_cfg, "enabled", False))
        clip_grad = _get(train_cfg, "clip_grad", None)
        clip_grad = dict(clip_grad) if clip_grad else None
        if amp:
            precision = _get(amp_cfg, "precision", "float16")
            if precision not in ("float16", "bfloat16"):
                raise ValueError(f"train.amp.precision must be 'float16' or 'bfloat16', got {precision!r}")
            self._trainer = AMPTrainer(
                ddp_model, None, optimizer, clip_grad=clip_grad, precision=getattr(torch, precision)
            )
        else:
            self._trainer = SimpleTrainer(ddp_model, None, optimizer, clip_grad=clip_grad)
        # Hooks registered on this trainer also see the inner trainer's after_backward.
        self._trainer._hooks = self._hooks

        self.max_iter = int(train_cfg.max_iter)
        _warn_schedule_length(cfg.lr_multiplier, self.max_iter)
        self.scheduler = LRMultiplier(optimizer, instantiate(cfg.lr_multiplier), self.max_iter)
        checkpointables: dict[str, Any] = {"optimizer": optimizer, "scheduler": self.scheduler}
        if amp:
            checkpointables["grad_scaler"] = self._trainer.grad_scaler
        self.output_dir = _get(train_cfg, "output_dir", "")
        self.checkpointer = DetectionCheckpointer(model, self.output_dir, **checkpointables)
        self.start_iter = 0
        self.last_eval_results: Any = None
        self.register_hooks(self.build_hooks())

    # -- convenient accessors -------------------------------------------------------------------
    @property
    def model(self) -> torch.nn.Module:
        return self._trainer.model

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._trainer.optimizer

    @property
    def data_loader(self):
        return self._trainer.data_loader

    # -- set-up ---------------------------------------------------------------------------------
    def build_hooks(self) -> list[hooks.HookBase]:
        cfg, train_cfg = self.cfg, self.cfg.train
        ret: list = [hooks.IterationTimer(), hooks.LRScheduler(optimizer=self.optimizer, scheduler=self.scheduler)]
        ckpt_cfg = _get(train_cfg, "checkpointer", {})
        if comm.is_main_process() and self.output_dir:
            ret.append(
                hooks.PeriodicCheckpointer(
                    self.checkpointer,
                    period=int(_get(ckpt_cfg, "period", self.max_iter)),
                    max_iter=self.max_iter,
                    max_to_keep=_get(ckpt_cfg, "max_to_keep", None),
                )
            )
        val_period = int(_get(train_cfg, "val_period", 0))
        if val_period > 0 and "val" in _get(cfg, "dataloader", {}):
            ret.append(
                hooks.ValidationLoss(
                    self.model,
                    instantiate(cfg.dataloader.val),
                    val_period,
                    num_batches=int(_get(train_cfg, "val_batches", 10)),
                )
            )
        if self._has_evaluator():

            def eval_fn():
                self.last_eval_results = self.test(self.cfg, self.model)
                return self.last_eval_results

            ret.append(hooks.EvalHook(int(_get(train_cfg, "eval_period", 0)), eval_fn))
            best = _get(train_cfg, "best_checkpointer", None)
            if best and comm.is_main_process() and self.output_dir:
                ret.append(
                    hooks.BestCheckpointer(
                        int(_get(train_cfg, "eval_period", 0)),
                        self.checkpointer,
                        val_metric=best["val_metric"],
                        mode=_get(best, "mode", "max"),
                    )
                )
        if comm.is_main_process() and self.output_dir:
            ret.append(
                hooks.PeriodicWriter(
                    default_writers(
                        self.output_dir, self.max_iter, tensorboard=bool(_get(train_cfg, "tensorboard", True))
                    ),
                    period=int(_get(train_cfg, "log_period", 20)),
                )
            )
        if comm.is_main_process() and self.output_dir and bool(_get(train_cfg, "plot_curves", True)):
            ret.append(
                hooks.PlotCurves(
                    os.path.join(self.output_dir, "metrics.json"), os.path.join(self.output_dir, "curves.png")
                )
            )
        return ret

    def _has_evaluator(self) -> bool:
        dl = _get(self.cfg, "dataloader", None)
        return dl is not None and _get(dl, "evaluator", None) is not None and _get(dl, "test", None) is not None

    @staticmethod
    def build_train_loader(cfg: DictConfig, start_iter: int = 0):
        """Instantiate ``cfg.dataloader.train``; with ``start_iter > 0`` it is passed to loaders that
        take it (they skip the first ``start_iter`` batches), else a warning says the order differs."""
        node = copy.deepcopy(cfg.dataloader.train)
        seed = int(_get(cfg.train, "seed", -1))
        # the loader's shuffling follows train.seed, so a resumed run replays the same order
        if seed >= 0 and _target_accepts(node, "seed") and _get(node, "seed", None) is None:
            node.seed = seed
        if start_iter > 0:
            if _target_accepts(node, "start_iter"):
                node.start_iter = int(start_iter)
            else:
                logger.warning(
                    "cfg.dataloader.train does not accept start_iter: the resumed run will not see "
                    "the same data order as an uninterrupted one"
                )
        return instantiate(node)

    # -- running --------------------------------------------------------------------------------
    def resume_or_load(self, resume: bool = True) -> None:
        """``resume`` and a checkpoint in ``output_dir``: load it all and continue after its iteration.
        Otherwise load only the model weights of ``train.init_checkpoint`` (if set) and start at 0."""
        init = _get(self.cfg.train, "init_checkpoint", "")
        has_ckpt = resume and self.checkpointer.has_checkpoint()
        extra = self.checkpointer.resume_or_load(init, resume=resume)
        if has_ckpt:
            self.start_iter = int(extra.get("iteration", -1)) + 1
            # The optimizer's saved LRs are those the schedule gave at save time; re-derive them from
            # the restored schedule position so that a changed schedule/max_iter applies at once.
            for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_lr()):
                group["lr"] = lr
            logger.info(f"Resuming at iteration {self.start_iter}")
        else:
            self.start_iter = 0

    def train(self) -> Any:
        """Run training from ``start_iter``; returns the final evaluation results (or ``None``), which a
        finished run also writes to ``output_dir/final_results.json``."""
        self._trainer.reset_data_loader(self.build_train_loader(self.cfg, self.start_iter))
        super().train(self.start_iter, self.max_iter)
        if comm.is_main_process() and self.output_dir and self.iter >= self.max_iter and self.last_eval_results:
            write_final_results(
                self.output_dir, self.last_eval_results, self.max_iter, _get(self.cfg.train, "seed", -1)
            )
        n_vis = int(_get(self.cfg.train, "num_vis_images", 0))
        if n_vis > 0 and comm.is_main_process() and self.iter >= self.max_iter:
            self.visualize(self.cfg, self.model, n_vis)
        return self.last_eval_results

    def run_step(self) -> None:
        self._trainer.iter = self.iter
        self._trainer.run_step()

    def state_dict(self) -> dict:
        ret = super().state_dict()
        ret["_trainer"] = self._trainer.state_dict()
        return ret

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._trainer.load_state_dict(state_dict["_trainer"])

    # -- evaluation / visualisation -------------------------------------------------------------
    @classmethod
    def test(cls, cfg: DictConfig, model: torch.nn.Module) -> dict:
        """Evaluate ``model`` on ``cfg.dataloader.test`` with ``cfg.dataloader.evaluator``; prints
        the results (``print_csv_format``) and returns them."""
        try:
            from net_detr2.evaluation import inference_on_dataset, print_csv_format
        except ImportError as e:
            raise ImportError(
                f"DefaultTrainer.test needs net_detr2.evaluation (inference_on_dataset, print_csv_format): {e}"
            ) from e
        if _get(_get(cfg, "dataloader", {}), "evaluator", None) is None:
            logger.warning("cfg.dataloader.evaluator is not set: skipping evaluation")
            return {}
        results = inference_on_dataset(
            model, instantiate(cfg.dataloader.test), instantiate(cls._evaluator_writing_to_output_dir(cfg))
        )
        if comm.is_main_process() and results:
            print_csv_format(results)
        return results

    @staticmethod
    def _evaluator_writing_to_output_dir(cfg: DictConfig):
        """``cfg.dataloader.evaluator``, with ``output_dir=train.output_dir`` when the evaluator takes an
        ``output_dir`` the config leaves unset (so the predictions, e.g. ``coco_instances_results.json``,
        are kept next to the checkpoints)."""
        node = cfg.dataloader.evaluator
        output_dir = _get(cfg.train, "output_dir", "")
        target = _get(node, "_target_", None)
        if not output_dir or target is None or "output_dir" in node:
            return node
        target = locate(target) if isinstance(target, str) else target
        try:
            takes_output_dir = "output_dir" in inspect.signature(target).parameters
        except (TypeError, ValueError):
            return node
        if not takes_output_dir:
            return node
        node = copy.deepcopy(node)
        node.output_dir = output_dir
        return node

    @staticmethod
    def _dataset_name(cfg: DictConfig) -> str | None:
        dl = cfg.dataloader
        for getter in (lambda: dl.evaluator.dataset_name, lambda: dl.test.dataset.names, lambda: dl.test.dataset_name):
            try:
                name = getter()
            except Exception:
                continue
            if name:
                return name if isinstance(name, str) else list(name)[0]
        return None

    @classmethod
    def visualize(cls, cfg: DictConfig, model: torch.nn.Module, max_images: int) -> list[str]:
        """Draw the predictions on the first ``max_images`` test images into ``output_dir/predictions``."""
        try:
            from net_detr2.utils.visualizer import save_image_grid, save_prediction_images
        except ImportError as e:
            raise ImportError(
                "train.num_vis_images > 0 needs net_detr2.utils.visualizer.save_prediction_images, "
                f"which is not available: {e}"
            ) from e
        if _get(_get(cfg, "dataloader", {}), "test", None) is None:
            logger.warning("train.num_vis_images > 0 but cfg.dataloader.test is not set: no images drawn")
            return []
        metadata = None
        name = cls._dataset_name(cfg)
        if name is not None:
            try:
                from net_detr2.data import MetadataCatalog

                metadata = MetadataCatalog.get(name)
            except ImportError:
                pass
        out_dir = os.path.join(_get(cfg.train, "output_dir", "."), "predictions")
        os.makedirs(out_dir, exist_ok=True)
        model = _unwrap(model)
        was_training = model.training
        model.eval()
        try:
            paths = save_prediction_images(
                model, instantiate(cfg.dataloader.test), metadata, out_dir, max_images, score_threshold=0.3
            )
        finally:
            model.train(was_training)
        if paths:
            grid = save_image_grid(paths, os.path.join(_get(cfg.train, "output_dir", "."), "predictions_grid.png"))
            logger.info(f"Saved {len(paths)} prediction images to {out_dir} and tiled them in {grid}")
        return paths
