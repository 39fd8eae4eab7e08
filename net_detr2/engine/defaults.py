"""The standard training set-up around a LazyConfig: argument parser, ``default_setup``,
``create_ddp_model``, ``default_writers`` and ``DefaultTrainer``.

Every setting comes from ``cfg.train`` (all keys and their defaults: ``configs/common/train.py``); nothing
here has a default of its own or changes the config.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import re
import sys
from contextlib import nullcontext
from typing import Any, NamedTuple

import torch
from omegaconf import DictConfig, ListConfig
from torch.nn.parallel import DistributedDataParallel

from net_detr2.checkpoint import DetectionCheckpointer, atomic_write, remove_stale_temp_files
from net_detr2.config import LazyConfig, instantiate
from net_detr2.evaluation import inference_on_dataset, print_csv_format
from net_detr2.modeling.test_time_augmentation import build_tta_model
from net_detr2.solver import LRMultiplier, ModelEMA, build_optimizer, freeze_parameters
from net_detr2.utils import comm
from net_detr2.utils.amp import resolve_amp_dtype
from net_detr2.utils.env import collect_env_info, seed_all_rng
from net_detr2.utils.events import CommonMetricPrinter, JSONWriter, TensorboardXWriter
from net_detr2.utils.logger import setup_logger
from net_detr2.utils.module_utils import unwrap_model

from . import hooks
from .train_loop import SimpleTrainer

__all__ = [
    "default_argument_parser",
    "default_setup",
    "default_writers",
    "create_ddp_model",
    "check_train_config",
    "write_final_results",
    "evaluate_checkpoint",
    "CheckpointEvaluation",
    "DefaultTrainer",
]

logger = logging.getLogger(__name__)

# The keys of cfg.train that the trainer reads (configs/common/train.py defines each one, with its default),
# with the type each must have.
TRAIN_KEYS: dict[str, tuple[type, ...]] = {
    "output_dir": (str,),
    "init_checkpoint": (str,),
    "max_iter": (int,),
    "amp": (dict,),
    "ddp": (dict,),
    "dist_timeout_s": (int, float),
    "checkpointer": (dict,),
    "eval_period": (int,),
    "log_period": (int,),
    "device": (str,),
    "seed": (int,),
    "clip_grad": (dict, type(None)),
    "trainable_params": (list, str, type(None)),
    "num_vis_images": (int,),
    "best_checkpointer": (dict, type(None)),
    "val_period": (int,),
    "val_batches": (int,),
    "tensorboard": (bool,),
    "plot_curves": (bool,),
    "cudnn_benchmark": (bool,),
    "grad_accum_steps": (int,),
    "ema": (dict,),
    "early_stopping": (dict,),
    "tta": (dict,),
}
_TRAIN_SUBKEYS = {
    "amp": ("enabled", "dtype"),
    "ddp": ("broadcast_buffers",),
    "checkpointer": ("period", "max_to_keep"),
    "ema": ("enabled", "decay", "warmup_iters"),
    "early_stopping": ("enabled", "metric", "mode", "patience", "min_delta"),
    "tta": ("enabled", "scales", "flip", "nms_thresh", "max_detections"),
}
# with a non-empty metrics.json, what makes a folder hold a run (and what --overwrite deletes)
_RUN_FILE = re.compile(
    r"^(model_(\d{7}|final|best)\.pth|last_checkpoint|final_results\.json|events\.out\.tfevents\..*)$"
)


class _ArgumentParser(argparse.ArgumentParser):
    """Flags and ``key=value`` overrides in any order (``... train.output_dir=D --resume`` works)."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        return self.parse_intermixed_args(args, namespace)


def default_argument_parser(epilog: str | None = None) -> argparse.ArgumentParser:
    """Arguments of ``train_net.py``; the ``key=value`` words (anywhere among the flags) are config overrides
    (``args.opts``)."""
    parser = _ArgumentParser(
        epilog=epilog
        or (
            "Examples:\n"
            f"  {sys.argv[0]} --config-file cfg.py train.max_iter=100\n"
            f"  {sys.argv[0]} --config-file cfg.py --num-gpus 2\n"
            f"  {sys.argv[0]} --config-file cfg.py train.output_dir=out --resume\n"
            f"  {sys.argv[0]} --config-file cfg.py --eval-only train.init_checkpoint=model.pth\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to the config file (.py or .yaml)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in train.output_dir from its last checkpoint (else start from train.init_checkpoint)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start a fresh run in a train.output_dir that holds one: its checkpoints (model_*.pth, "
        "last_checkpoint), metrics.json and TensorBoard events are deleted first",
    )
    parser.add_argument(
        "--eval-only",
        action="store_true",
        help="only evaluate train.init_checkpoint (with --resume: the last checkpoint of train.output_dir)",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="allow --eval-only without weights, i.e. evaluate a randomly initialised model on purpose",
    )
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
        default=[],
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides 'path.key=value', e.g. train.max_iter=100 model.num_classes=5",
    )
    return parser


def check_train_config(train: Any) -> None:
    """Every key the trainer reads is in ``cfg.train`` with the right type; else a ``ValueError`` naming it."""
    missing = [k for k in TRAIN_KEYS if k not in train]
    missing += [f"{k}.{sub}" for k, subs in _TRAIN_SUBKEYS.items() if k in train for sub in subs if sub not in train[k]]
    if missing:
        raise ValueError(
            f"cfg.train lacks {missing}: start from configs/common/train.py (`from ..common.train import train`), "
            "which defines every key the trainer reads"
        )
    for key, types in TRAIN_KEYS.items():
        if not _has_type(train[key], types):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise ValueError(f"train.{key} must be {names}, got {train[key]!r}")
    if train.max_iter < 0:
        raise ValueError(f"train.max_iter must be >= 0, got {train.max_iter}")
    if not train.output_dir:
        raise ValueError("train.output_dir is empty: give the folder for checkpoints and logs")
    if train.log_period <= 0:
        raise ValueError(f"train.log_period must be a positive integer, got {train.log_period}")
    period, keep = train.checkpointer.period, train.checkpointer.max_to_keep
    if not _has_type(period, (int,)) or period <= 0:
        raise ValueError(f"train.checkpointer.period must be a positive integer, got {period!r}")
    if not (keep is None or (_has_type(keep, (int,)) and keep >= 1)):
        raise ValueError(f"train.checkpointer.max_to_keep must be a positive integer or None, got {keep!r}")
    for key in ("amp", "ema", "early_stopping", "tta"):
        if not _has_type(train[key].enabled, (bool,)):
            raise ValueError(f"train.{key}.enabled must be True or False, got {train[key].enabled!r}")
    _check_knobs(train)


def _check_knobs(train: Any) -> None:
    """The values of grad_accum_steps, ema, early_stopping and tta (checked even when a switch is off)."""
    if train.grad_accum_steps < 1:
        raise ValueError(f"train.grad_accum_steps must be a positive integer, got {train.grad_accum_steps}")
    ema = train.ema
    if not (_has_type(ema.decay, (float,)) and 0.0 < ema.decay < 1.0):
        raise ValueError(f"train.ema.decay must be a number in (0, 1), got {ema.decay!r}")
    if not (_has_type(ema.warmup_iters, (int,)) and ema.warmup_iters >= 0):
        raise ValueError(f"train.ema.warmup_iters must be an integer >= 0, got {ema.warmup_iters!r}")
    stop = train.early_stopping
    if not (isinstance(stop.metric, str) and stop.metric):
        raise ValueError(
            f"train.early_stopping.metric must name an evaluation result (e.g. 'bbox/AP'), got {stop.metric!r}"
        )
    if stop.mode not in ("max", "min"):
        raise ValueError(f"train.early_stopping.mode must be 'max' or 'min', got {stop.mode!r}")
    if not (_has_type(stop.patience, (int,)) and stop.patience >= 1):
        raise ValueError(f"train.early_stopping.patience (evaluations) must be an integer >= 1, got {stop.patience!r}")
    if not (_has_type(stop.min_delta, (int, float)) and stop.min_delta >= 0):
        raise ValueError(f"train.early_stopping.min_delta must be a number >= 0, got {stop.min_delta!r}")
    tta = train.tta
    scales = tta.scales
    if not (
        _has_type(scales, (list,)) and len(scales) > 0 and all(_has_type(x, (int, float)) and x > 0 for x in scales)
    ):
        raise ValueError(f"train.tta.scales must be a non-empty list of positive resize factors, got {scales!r}")
    if not _has_type(tta.flip, (bool,)):
        raise ValueError(f"train.tta.flip must be True or False, got {tta.flip!r}")
    if not (tta.nms_thresh is None or (_has_type(tta.nms_thresh, (int, float)) and 0 < tta.nms_thresh <= 1)):
        raise ValueError(f"train.tta.nms_thresh must be None (the model's own) or in (0, 1], got {tta.nms_thresh!r}")
    if not (tta.max_detections is None or (_has_type(tta.max_detections, (int,)) and tta.max_detections >= 1)):
        raise ValueError(
            f"train.tta.max_detections must be None (the model's own) or a positive integer, got {tta.max_detections!r}"
        )


def _has_type(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False  # True is an int to Python, not to a config
    if dict in types and isinstance(value, DictConfig):
        return True
    if list in types and isinstance(value, (tuple, ListConfig)):
        return True
    return isinstance(value, types)


def holds_run(output_dir: str) -> list[str]:
    """The files of a training run in ``output_dir``: the trainer's checkpoints (``model_0000999.pth``,
    ``model_final.pth``, ``model_best.pth``), ``last_checkpoint``, a non-empty ``metrics.json``."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in sorted(os.listdir(output_dir)):
        if not os.path.isfile(os.path.join(output_dir, name)):
            continue
        if _RUN_FILE.match(name) or (name == "metrics.json" and os.path.getsize(os.path.join(output_dir, name))):
            found.append(name)
    return found


def refuse_existing_run(output_dir: str) -> None:
    """A ``FileExistsError`` naming ``output_dir`` and the ways out, when it already holds a run."""
    found = holds_run(output_dir)
    if found:
        shown = [f for f in found if not f.startswith("events.out.tfevents.")]
        shown += ["TensorBoard events"] if len(shown) < len(found) else []
        raise FileExistsError(
            f"{output_dir} already holds a training run ({', '.join(shown)}); a fresh run would overwrite it. "
            f"Continue that run with --resume, or write this one elsewhere with train.output_dir=<another folder> "
            f"(or pass --overwrite to delete the earlier run's checkpoints, metrics and TensorBoard events and "
            f"start afresh)"
        )


def _remove_run(output_dir: str, keep: str) -> None:
    """Delete the run files `holds_run` finds (but ``keep``, e.g. an init checkpoint stored there)."""
    for name in holds_run(output_dir):
        path = os.path.join(output_dir, name)
        if keep and os.path.abspath(path) == os.path.abspath(keep):
            continue
        os.remove(path)
        logger.info(f"--overwrite: removed {path}")


def default_setup(cfg: DictConfig, args: argparse.Namespace | None) -> None:
    """Check the invocation, then prepare the run: output folder, loggers (console on rank 0, ``log.txt[.rankN]``
    for every rank), environment info, the config saved as ``output_dir/config.yaml``, the collective timeout.

    Refused before anything is written: a fresh run (no ``--resume``) in a folder that holds a run, unless
    ``--overwrite``; ``--eval-only`` without weights, unless ``--random-weights``. Stale temporary files of
    interrupted saves are removed. Seeding is the trainer's (`DefaultTrainer`).
    """
    check_train_config(cfg.train)
    train = cfg.train
    output_dir = train.output_dir
    resume, overwrite, eval_only, random_weights = (
        bool(getattr(args, k, False)) for k in ("resume", "overwrite", "eval_only", "random_weights")
    )
    if eval_only:
        has_last = resume and os.path.isfile(os.path.join(output_dir, "last_checkpoint"))
        if not (train.init_checkpoint or has_last or random_weights):
            raise ValueError(
                "--eval-only needs weights: set train.init_checkpoint=<model.pth>, or add --resume to evaluate the "
                f"last checkpoint of train.output_dir ({output_dir}); pass --random-weights to evaluate an "
                "untrained model on purpose"
            )
    elif not resume and not overwrite:
        refuse_existing_run(output_dir)
    rank = comm.get_rank()
    if comm.is_main_process():
        os.makedirs(output_dir, exist_ok=True)
        remove_stale_temp_files(output_dir)
        if overwrite and not resume and not eval_only:
            _remove_run(output_dir, keep=train.init_checkpoint)
    comm.synchronize()
    setup_logger(output_dir, distributed_rank=rank, name="fvcore")
    log = setup_logger(output_dir, distributed_rank=rank)
    log.info(f"Rank of current process: {rank}. World size: {comm.get_world_size()}")
    log.info("Environment info:\n" + collect_env_info())
    if args is not None:
        log.info("Command line arguments: " + str(args))
        config_file = getattr(args, "config_file", "")
        if config_file:
            with open(config_file, encoding="utf-8") as f:
                log.info(f"Contents of args.config_file={config_file}:\n{f.read()}")
    if comm.is_main_process():
        path = os.path.join(output_dir, "config.yaml")
        LazyConfig.save(cfg, path)
        log.info(f"Full config saved to {path}")
    comm.set_timeout(train.dist_timeout_s)
    if not eval_only:
        torch.backends.cudnn.benchmark = train.cudnn_benchmark


def default_writers(output_dir: str, max_iter: int | None = None, tensorboard: bool = True) -> list:
    """Console printer, ``output_dir/metrics.json`` and (optionally) TensorBoard event files."""
    writers = [CommonMetricPrinter(max_iter), JSONWriter(os.path.join(output_dir, "metrics.json"))]
    if tensorboard:
        writers.append(TensorboardXWriter(output_dir))
    return writers


def create_ddp_model(
    model: torch.nn.Module, *, fp16_compression: bool = False, broadcast_buffers: bool = True, **kwargs: Any
) -> torch.nn.Module:
    """Wrap ``model`` in ``DistributedDataParallel`` when running with more than one process.

    ``broadcast_buffers``: copy rank 0's buffers to every rank at the start of each forward (given to torch under
    the name the installed version takes). ``kwargs`` go to DDP (e.g. ``find_unused_parameters=True``); on
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
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
        kwargs["forward_sync_buffers"] = broadcast_buffers  # torch >= 2.14 deprecates broadcast_buffers
    else:
        kwargs["broadcast_buffers"] = broadcast_buffers
    with comm.collective("DistributedDataParallel set-up (rank 0's weights to every rank)"):
        ddp = DistributedDataParallel(model, **kwargs)
    if fp16_compression:
        from torch.distributed.algorithms.ddp_comm_hooks import default as comm_hooks

        ddp.register_comm_hook(state=None, hook=comm_hooks.fp16_compress_hook)
    return ddp


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


def write_final_results(
    output_dir: str, results: dict, iterations: int, seed: int, *, stopped_early: bool = False
) -> str:
    """Write a finished run's final evaluation to ``output_dir/final_results.json`` (atomically):
    ``{"iteration": iterations, "seed": seed, "stopped_early": stopped_early, "results": {task: {metric: value}}}``.
    ``iterations``: how many iterations the run trained, the iteration its final evaluation has in ``metrics.json``
    (``train.max_iter``, fewer when early stopping ended it: then ``stopped_early``). Its presence marks the
    run as complete (the multi-seed comparison, ``tools/compare.py``, skips such runs)."""
    path = os.path.join(output_dir, FINAL_RESULTS_FILE)
    record = {"iteration": int(iterations), "seed": int(seed), "stopped_early": bool(stopped_early), "results": results}
    atomic_write(path, lambda f: json.dump(record, f, indent=1, default=float), mode="w")
    return path


def _warn_untrained_frozen_bn(model: torch.nn.Module) -> None:
    from net_detr2.layers.batch_norm import untrained_frozen_batchnorms

    names = untrained_frozen_batchnorms(model)
    if names:
        logger.warning(
            f"{len(names)} frozen BatchNorm layers (e.g. {names[0]}) have no pretrained statistics: "
            "train.init_checkpoint gave them none, and from random initialisation frozen BatchNorm normalises "
            "nothing, so activations and losses can blow up. Load pretrained weights, or use norm='BN' / 'GN'."
        )


def _ground_truth_by_image_id(dataset_name: str | None) -> dict | None:
    """``{image_id: dataset dict}`` of a registered dataset with annotations (drawn beside the predictions)."""
    if dataset_name is None:
        return None
    from net_detr2.data import DatasetCatalog

    try:
        dicts = DatasetCatalog.get(dataset_name)
    except (KeyError, FileNotFoundError, OSError) as e:
        logger.warning(f"prediction pictures without ground truth: {e}")
        return None
    return {d["image_id"]: d for d in dicts if "annotations" in d and "image_id" in d} or None


class DefaultTrainer(SimpleTrainer):
    """Training driven by a LazyConfig: one trainer, every setting read from ``cfg.train`` (keys and defaults
    in ``configs/common/train.py``; see also ``DEVELOPERS.md``).

    ``__init__`` seeds every random generator once (``train.seed`` + rank, or a random seed), then builds the
    model (+ ``train.trainable_params`` freezing), optimizer, training data loader, DDP wrapper, LR scheduler,
    checkpointer and hooks. ``resume_or_load`` loads weights: on resume also the optimizer, scheduler, gradient
    scaler, iteration, every rank's random generators and the data loader's place, so the resumed run goes on
    exactly as the uninterrupted one would have. ``train`` runs the loop; after a training that finished
    (not after an error): the final evaluation (when ``cfg.dataloader.evaluator`` exists), ``curves.png`` and
    ``train.num_vis_images`` prediction images (``predictions/*.png``, tiled in ``predictions_grid.png``).
    """

    def __init__(self, cfg: DictConfig):
        check_train_config(cfg.train)
        train = cfg.train
        if not logging.getLogger("net_detr2").handlers:
            setup_logger(distributed_rank=comm.get_rank())
        rank = comm.get_rank()
        self.seed = seed_all_rng(None if train.seed < 0 else train.seed + rank)
        logger.info(
            f"Seeded python, numpy and torch with {self.seed}"
            + (f" (train.seed={train.seed} + rank {rank})" if train.seed >= 0 else " (random: train.seed < 0)")
        )
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        ddp_options = dict(train.ddp)
        sync_buffers = ddp_options.pop("broadcast_buffers")
        # the trainer copies rank 0's buffers after every step itself (SimpleTrainer.sync_buffers)
        ddp_model = create_ddp_model(model, broadcast_buffers=False, **ddp_options)
        # from rank 0's weights, which DDP has just given every rank (loading weights restarts the average)
        ema = ModelEMA(model, train.ema.decay, train.ema.warmup_iters) if train.ema.enabled else None
        super().__init__(
            ddp_model,
            data_loader,
            optimizer,
            amp_dtype=resolve_amp_dtype(train.amp.enabled, train.amp.dtype, train.device),
            clip_grad=train.clip_grad,
            sync_buffers=sync_buffers,
            grad_accum_steps=train.grad_accum_steps,
            ema=ema,
        )
        self.cfg = cfg
        self.max_iter = train.max_iter
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        checkpointables: dict[str, Any] = {"optimizer": optimizer, "scheduler": self.scheduler}
        if self.grad_scaler.is_enabled():
            checkpointables["grad_scaler"] = self.grad_scaler
        self.checkpointer = DetectionCheckpointer(model, train.output_dir, ema=self.ema, **checkpointables)
        self.last_eval_results: Any = None
        self._evaluated_after = -1  # the iteration after which last_eval_results were evaluated
        self.register_hooks(self.build_hooks())

    # -- building blocks (override in a subclass to change one) -------------------------------------
    @classmethod
    def build_model(cls, cfg: DictConfig) -> torch.nn.Module:
        """``cfg.model`` on ``train.device``, with ``train.trainable_params`` applied."""
        model = instantiate(cfg.model)
        model.to(cfg.train.device)
        n_train, n_frozen = freeze_parameters(model, cfg.train.trainable_params)
        n_train_el = sum(p.numel() for p in model.parameters() if p.requires_grad)
        n_frozen_el = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        logger.info(
            f"Trainable parameters: {n_train} tensors ({n_train_el:,} values); "
            f"frozen: {n_frozen} tensors ({n_frozen_el:,} values)"
        )
        return model

    @classmethod
    def build_optimizer(cls, cfg: DictConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
        return build_optimizer(cfg.optimizer, model)

    @classmethod
    def build_lr_scheduler(cls, cfg: DictConfig, optimizer: torch.optim.Optimizer) -> LRMultiplier:
        _warn_schedule_length(cfg.lr_multiplier, cfg.train.max_iter)
        return LRMultiplier(optimizer, instantiate(cfg.lr_multiplier), cfg.train.max_iter)

    @classmethod
    def build_train_loader(cls, cfg: DictConfig):
        """``cfg.dataloader.train``, instantiated as it is (its seed, when not given, follows ``train.seed``
        through numpy's generator, which the trainer has seeded)."""
        return instantiate(cfg.dataloader.train)

    def build_hooks(self) -> list[hooks.HookBase]:
        """Timer, LR schedule, (validation losses), (evaluation, best checkpoint, early stopping), periodic
        checkpoints, writers, curves. Evaluation comes before the checkpointer, so that the checkpoint of an
        evaluated iteration holds what that evaluation decided (best metric, early-stopping counts)."""
        cfg, train = self.cfg, self.cfg.train
        main = comm.is_main_process()
        ret: list = [
            hooks.IterationTimer(),
            hooks.LRScheduler(optimizer=self.optimizer, scheduler=self.scheduler),
        ]
        if train.val_period > 0 and "val" in cfg.dataloader:
            ret.append(
                hooks.ValidationLoss(
                    self.model, instantiate(cfg.dataloader.val), train.val_period, num_batches=train.val_batches
                )
            )
        stop = train.early_stopping
        if stop.enabled and not (self._has_evaluator() and train.eval_period > 0):
            raise ValueError(
                "train.early_stopping.enabled needs periodic evaluations: train.eval_period > 0 (it is "
                f"{train.eval_period}) and cfg.dataloader.test and cfg.dataloader.evaluator"
            )
        if self._has_evaluator():

            def eval_fn():
                # the average of the weights, when kept, is what is evaluated; TTA only after training
                with self.ema.applied_to(self.model) if self.ema is not None else nullcontext():
                    if self.finished and self._evaluated_after == self.iter - 1 and self.last_eval_results:
                        # a hook (early stopping) ended the training right after an evaluation of these weights:
                        # its results are the final ones, with only the test-time augmentation still to run
                        logger.info(
                            f"Final evaluation: the results of iteration {self._evaluated_after} (same weights)"
                        )
                        results = dict(self.last_eval_results)
                        if self.cfg.train.tta.enabled:
                            results.update(self.test_tta(self.cfg, self.model))
                        self.last_eval_results = results
                    else:
                        self.last_eval_results = self.test(self.cfg, self.model, with_tta=self.finished)
                        self._evaluated_after = self.iter
                return self.last_eval_results

            ret.append(hooks.EvalHook(train.eval_period, eval_fn))
            best = train.best_checkpointer
            if best:
                ret.append(
                    hooks.BestCheckpointer(
                        train.eval_period,
                        self.checkpointer,
                        val_metric=best["val_metric"],
                        mode=best.get("mode", "max"),
                    )
                )
            if stop.enabled:
                ret.append(
                    hooks.EarlyStopping(
                        train.eval_period, stop.metric, stop.mode, patience=stop.patience, min_delta=stop.min_delta
                    )
                )
        # on every rank: the trainer's state (random generators) is gathered from all of them
        ret.append(
            hooks.PeriodicCheckpointer(
                self.checkpointer,
                period=train.checkpointer.period,
                max_iter=self.max_iter,
                max_to_keep=train.checkpointer.max_to_keep,
            )
        )
        if main:
            ret.append(
                hooks.PeriodicWriter(
                    default_writers(train.output_dir, self.max_iter, tensorboard=train.tensorboard),
                    period=train.log_period,
                )
            )
        if main and train.plot_curves:
            ret.append(
                hooks.PlotCurves(
                    os.path.join(train.output_dir, "metrics.json"), os.path.join(train.output_dir, "curves.png")
                )
            )
        return ret

    def _has_evaluator(self) -> bool:
        dl = self.cfg.get("dataloader")
        return dl is not None and dl.get("evaluator") is not None and dl.get("test") is not None

    # -- running --------------------------------------------------------------------------------
    def resume_or_load(self, resume: bool = True) -> None:
        """``resume`` and a checkpoint in ``train.output_dir``: load it all and continue after its iteration.
        Otherwise load only the model weights of ``train.init_checkpoint`` (if set) and start at 0; without
        ``resume`` a folder that already holds a run is refused (``FileExistsError``)."""
        output_dir = self.cfg.train.output_dir
        if comm.is_main_process():
            remove_stale_temp_files(output_dir)
        resuming = resume and self.checkpointer.has_checkpoint()
        if not resume:
            refuse_existing_run(output_dir)
        path = self.checkpointer.get_checkpoint_file() if resuming else self.cfg.train.init_checkpoint
        # on resume: the model strictly, the optimizer, scheduler and gradient scaler; else the weights only
        extra = self.checkpointer.resume_or_load(self.cfg.train.init_checkpoint, resume=resume)
        if not resuming:
            self.start_iter = 0
            _warn_untrained_frozen_bn(unwrap_model(self.model))
            return
        iteration = extra.get("iteration")
        if not isinstance(iteration, int) or isinstance(iteration, bool) or not 0 <= iteration < self.max_iter:
            raise ValueError(
                f"Cannot resume from {path}: its iteration is {iteration!r}, expected an integer in "
                f"[0, train.max_iter={self.max_iter}) (the index of the last completed iteration). To train "
                "longer, raise train.max_iter; to start afresh, use another train.output_dir"
            )
        self.start_iter = iteration + 1
        if "trainer" in extra:
            self.load_state_dict({**extra["trainer"], "iteration": iteration})
        else:
            self.iter = iteration
            self.load_rng_and_data_state({})  # warns: an older checkpoint without the trainer's state
        # The optimizer's saved LRs are those the schedule gave at save time; re-derive them from
        # the restored schedule position so that a changed schedule/max_iter applies at once.
        for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_lr()):
            group["lr"] = lr
        if comm.is_main_process():
            _drop_metrics_after(os.path.join(output_dir, "metrics.json"), iteration)
        logger.info(f"Resuming from {path} at iteration {self.start_iter}")

    def train(self) -> Any:
        """Run training from ``start_iter``; returns the final evaluation results (or ``None``), which a
        finished run also writes to ``train.output_dir/final_results.json``."""
        super().train(self.start_iter, self.max_iter)
        if self.last_eval_results and comm.is_main_process() and self.cfg.train.output_dir:
            # self.iter: the iterations run, max_iter or fewer when a hook (early stopping) ended the training
            write_final_results(
                self.cfg.train.output_dir,
                self.last_eval_results,
                self.iter,
                self.cfg.train.seed,
                stopped_early=self.stop_reason is not None,
            )
        if self.cfg.train.num_vis_images > 0 and comm.is_main_process():
            with self.ema.applied_to(self.model) if self.ema is not None else nullcontext():
                self.visualize(self.cfg, self.model, self.cfg.train.num_vis_images)
        return self.last_eval_results

    def state_dict(self) -> dict:
        """The loop's state (see `SimpleTrainer.state_dict`); the optimizer, scheduler and gradient scaler are
        saved by the checkpointer beside it."""
        ret = super().state_dict()
        ret.pop("optimizer")
        ret.pop("grad_scaler")
        return ret

    # -- evaluation / visualisation -------------------------------------------------------------
    @classmethod
    def test(cls, cfg: DictConfig, model: torch.nn.Module, with_tta: bool = True) -> dict:
        """Evaluate ``model`` on ``cfg.dataloader.test`` with ``cfg.dataloader.evaluator``; prints
        the results (``print_csv_format``) and returns them.

        With ``train.tta.enabled`` (and ``with_tta``) the model wrapped in `DetectorWithTTA` is evaluated too
        (`test_tta`), its results added under the task names plus ``_TTA`` (``bbox_TTA/AP``). The trainer evaluates
        with TTA only after training."""
        if cfg.dataloader.get("evaluator") is None:
            logger.warning("cfg.dataloader.evaluator is not set: skipping evaluation")
            return {}
        results = inference_on_dataset(
            model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator), amp_dtype=_amp_dtype(cfg)
        )
        if with_tta and cfg.train.tta.enabled:
            results = {**results, **cls._evaluate_tta(cfg, model)}
        if comm.is_main_process() and results:
            print_csv_format(results)
        return results

    @classmethod
    def test_tta(cls, cfg: DictConfig, model: torch.nn.Module) -> dict:
        """Only the test-time-augmentation part of `test` (``train.tta``, whether enabled or not): the results of
        ``model`` wrapped in `DetectorWithTTA`, under the task names plus ``_TTA``, an evaluator's files written to
        ``<its output_dir>/inference_TTA``; printed and returned."""
        if cfg.dataloader.get("evaluator") is None:
            logger.warning("cfg.dataloader.evaluator is not set: skipping evaluation")
            return {}
        results = cls._evaluate_tta(cfg, model)
        if comm.is_main_process() and results:
            print_csv_format(results)
        return results

    @classmethod
    def _evaluate_tta(cls, cfg: DictConfig, model: torch.nn.Module) -> dict:
        logger.info(f"Evaluating with test-time augmentation: {dict(cfg.train.tta)}")
        tta_model = build_tta_model(unwrap_model(model), cfg.train.tta)
        spec = _redirect_output_dirs(cfg.dataloader.evaluator, "inference_TTA")
        tta_results = inference_on_dataset(
            tta_model, instantiate(cfg.dataloader.test), instantiate(spec), amp_dtype=_amp_dtype(cfg)
        )
        return {f"{task}_TTA": value for task, value in tta_results.items()}

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
        from net_detr2.data import MetadataCatalog
        from net_detr2.utils.visualizer import save_image_grid, save_prediction_images

        if cfg.dataloader.get("test") is None:
            logger.warning("train.num_vis_images > 0 but cfg.dataloader.test is not set: no images drawn")
            return []
        name = cls._dataset_name(cfg)
        metadata = MetadataCatalog.get(name) if name is not None else None
        out_dir = os.path.join(cfg.train.output_dir, "predictions")
        os.makedirs(out_dir, exist_ok=True)
        paths = save_prediction_images(
            unwrap_model(model),
            instantiate(cfg.dataloader.test),
            metadata,
            out_dir,
            max_images,
            score_threshold=0.3,
            ground_truth=_ground_truth_by_image_id(name),
        )
        if paths:
            grid = save_image_grid(paths, os.path.join(cfg.train.output_dir, "predictions_grid.png"))
            logger.info(f"Saved {len(paths)} prediction images to {out_dir} and tiled them in {grid}")
        return paths


class CheckpointEvaluation(NamedTuple):
    """What `evaluate_checkpoint` evaluated and found."""

    model: torch.nn.Module  # cfg.model holding the evaluated weights (wrapped in DDP with several processes)
    checkpoint: str  # the file the weights came from ("": none, the model's initialisation)
    iteration: int  # the file's ``iteration`` (the last completed one), -1 when it has none
    results: dict  # DefaultTrainer.test's results


def evaluate_checkpoint(
    cfg: DictConfig, checkpoint: str | None = None, *, resume: bool = False
) -> CheckpointEvaluation:
    """Evaluate the weights of a checkpoint file under ``cfg``: build ``cfg.model`` (`DefaultTrainer.build_model`,
    DDP with several processes), load the file's weights and evaluate them (`DefaultTrainer.test`: ``train.amp``,
    and ``train.tta`` when enabled). This is ``train_net.py --eval-only``.

    ``checkpoint``: the file (None: ``cfg.train.init_checkpoint``; "": none). ``resume``: the last checkpoint of
    ``cfg.train.output_dir`` (the one its ``last_checkpoint`` names) instead, when there is one. The weights load
    leniently, as a run's starting weights do, so a file written with ``train.ema`` gives its average of the weights
    (``model``), never the trained weights kept beside it for resuming (``raw_model``).
    """
    path = cfg.train.init_checkpoint if checkpoint is None else checkpoint
    model = create_ddp_model(DefaultTrainer.build_model(cfg))
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir)
    if resume and checkpointer.has_checkpoint():
        path = checkpointer.get_checkpoint_file()
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Cannot evaluate the last checkpoint: {os.path.join(cfg.train.output_dir, 'last_checkpoint')} "
                f"names {path}, which does not exist"
            )
    extra = checkpointer.load(path, checkpointables=[])
    iteration = extra.get("iteration", -1)
    logger.info(f"Evaluating {path or 'the initialisation of cfg.model (no checkpoint)'}")
    return CheckpointEvaluation(model, path, int(iteration), DefaultTrainer.test(cfg, model))


def _amp_dtype(cfg: DictConfig) -> torch.dtype | None:
    """Evaluation runs in the precision the run trained in (train.amp), so bf16 recipes also evaluate in bf16."""
    return resolve_amp_dtype(cfg.train.amp.enabled, cfg.train.amp.dtype, cfg.train.device)


def _redirect_output_dirs(node: Any, subfolder: str) -> Any:
    """A copy of the config ``node`` (plain dicts and lists, interpolations resolved where they stand) in which every
    non-empty ``output_dir``, at any depth (an evaluator wrapping another, a list of evaluators), is
    ``<output_dir>/<subfolder>``; the config itself is not changed."""
    if isinstance(node, (DictConfig, dict)):
        if isinstance(node, DictConfig) and node._is_none():
            return None
        out = {k: _redirect_output_dirs(node[k], subfolder) for k in node}
        if isinstance(out.get("output_dir"), str) and out["output_dir"]:
            out["output_dir"] = os.path.join(out["output_dir"], subfolder)
        return out
    if isinstance(node, (ListConfig, list, tuple)):
        return [_redirect_output_dirs(v, subfolder) for v in node]
    return node


def _drop_metrics_after(path: str, iteration: int) -> None:
    """Remove from ``metrics.json`` the records of iterations after ``iteration`` (a run that went on past its last
    checkpoint before it stopped), so the resumed run's records do not repeat them."""
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    kept = []
    for line in lines:
        try:
            record_iter = json.loads(line).get("iteration")
        except (json.JSONDecodeError, AttributeError):
            continue  # a half-written last line of the interrupted run
        if isinstance(record_iter, int) and record_iter <= iteration:
            kept.append(line if line.endswith("\n") else line + "\n")
    if len(kept) != len(lines):
        atomic_write(path, lambda f: f.writelines(kept), mode="w")
