"""Training hooks: timing, LR scheduling, checkpointing, evaluation, writing, plotting."""

from __future__ import annotations

import datetime
import json
import logging
import math
import operator
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from net_detr2.evaluation.testing import flatten_results_dict
from net_detr2.utils import comm
from net_detr2.utils.env import preserve_rng_state
from net_detr2.utils.events import EventWriter

from .train_loop import HookBase

__all__ = [
    "CallbackHook",
    "IterationTimer",
    "PeriodicWriter",
    "PeriodicCheckpointer",
    "BestCheckpointer",
    "LRScheduler",
    "EvalHook",
    "ValidationLoss",
    "PlotCurves",
]

logger = logging.getLogger(__name__)


class CallbackHook(HookBase):
    """A hook made of plain functions ``f(trainer)``."""

    def __init__(self, *, before_train=None, after_train=None, before_step=None, after_step=None):
        self._before_train, self._after_train = before_train, after_train
        self._before_step, self._after_step = before_step, after_step

    def before_train(self):
        if self._before_train:
            self._before_train(self.trainer)

    def after_train(self):
        if self._after_train:
            self._after_train(self.trainer)

    def before_step(self):
        if self._before_step:
            self._before_step(self.trainer)

    def after_step(self):
        if self._after_step:
            self._after_step(self.trainer)


class IterationTimer(HookBase):
    """Record the time of each iteration (``time`` scalar) and log a summary at the end.

    The first ``warmup_iter`` iterations are excluded from the summary (they include set-up cost).
    """

    def __init__(self, warmup_iter: int = 3):
        self._warmup_iter = warmup_iter
        self._step_start = 0.0
        self._total_time = 0.0
        self._timed_iters = 0
        self._train_start = 0.0

    def before_train(self):
        self._train_start = time.perf_counter()
        self._total_time = 0.0
        self._timed_iters = 0

    def after_train(self):
        total = time.perf_counter() - self._train_start
        num_iter = self.trainer.iter - self.trainer.start_iter - self._warmup_iter
        if num_iter > 0 and self._timed_iters > 0:
            logger.info(
                f"Overall training speed: {self._timed_iters} iterations in "
                f"{datetime.timedelta(seconds=int(self._total_time))} "
                f"({self._total_time / self._timed_iters:.4f} s / it)"
            )
        logger.info(f"Total training time: {datetime.timedelta(seconds=int(total))}")

    def before_step(self):
        self._step_start = time.perf_counter()

    def after_step(self):
        elapsed = time.perf_counter() - self._step_start
        if self.trainer.iter >= self.trainer.start_iter + self._warmup_iter:
            self._total_time += elapsed
            self._timed_iters += 1
        self.trainer.storage.put_scalars(time=elapsed)


class PeriodicWriter(HookBase):
    """Call ``writer.write()`` every ``period`` iterations, at the last iteration and after training.

    Early in a run it also writes after iterations 1, 2, 5, 10, 20, 50, ... (counted from the start of this
    run; those below ``period``), so the first progress line with losses and an ETA comes after the first
    iteration rather than after ``period`` of them.
    """

    def __init__(self, writers: Iterable[EventWriter], period: int = 20):
        self._writers = list(writers)
        for w in self._writers:
            if not isinstance(w, EventWriter):
                raise TypeError(f"PeriodicWriter: {w!r} is not an EventWriter")
        if not isinstance(period, int) or period <= 0:
            raise ValueError(f"PeriodicWriter: period (train.log_period) must be a positive integer, got {period!r}")
        self._period = period

    def _early(self, done: int) -> bool:
        """``done`` is one of 1, 2, 5, 10, 20, 50, ... below the period."""
        if done >= self._period:
            return False
        while done % 10 == 0:
            done //= 10
        return done in (1, 2, 5)

    def after_step(self):
        done = self.trainer.iter + 1 - self.trainer.start_iter
        if (
            (self.trainer.iter + 1) % self._period == 0
            or self.trainer.iter == self.trainer.max_iter - 1
            or self._early(done)
        ):
            for w in self._writers:
                w.write()

    def after_train(self):
        for w in self._writers:
            # Flush what after_train hooks (e.g. the final evaluation) recorded, then close.
            w.write()
            w.close()


class PeriodicCheckpointer(HookBase):
    """Save ``{file_prefix}_{iter:07d}.pth`` every ``period`` iterations and ``{file_prefix}_final.pth``
    at the end; keep at most ``max_to_keep`` periodic files (``None``: all).

    The saved ``iteration`` is the index of the iteration just completed, so a resumed run starts
    at ``iteration + 1``; ``trainer`` holds the trainer's state (random generators of every rank, the data
    loader's place, hooks' state). Register it on every process (the trainer's state is gathered from all
    ranks); only the main process writes. A save the checkpointer refuses because the weights are not finite
    stops training with a ``FloatingPointError`` naming the iteration; ``last_checkpoint`` keeps naming the
    last good checkpoint.
    """

    def __init__(
        self,
        checkpointer,
        period: int,
        max_iter: int | None = None,
        max_to_keep: int | None = None,
        file_prefix: str = "model",
    ):
        if period <= 0:
            raise ValueError(f"PeriodicCheckpointer: period must be positive, got {period}")
        if max_to_keep is not None and max_to_keep < 1:
            raise ValueError(f"PeriodicCheckpointer: max_to_keep must be >= 1 or None, got {max_to_keep}")
        self.checkpointer = checkpointer
        self.period = int(period)
        self.max_iter = max_iter
        self.max_to_keep = max_to_keep
        self.file_prefix = file_prefix
        self.recent: list[str] = []

    def before_train(self):
        if self.max_iter is None:
            self.max_iter = self.trainer.max_iter
        # After a resume, the periodic files of the earlier run count towards max_to_keep too.
        save_dir = getattr(self.checkpointer, "save_dir", "")
        if self.max_to_keep is not None and save_dir and os.path.isdir(save_dir):
            pattern = re.compile(rf"{re.escape(self.file_prefix)}_(\d{{7}})\.pth$")
            found = sorted((int(m.group(1)), f) for f in os.listdir(save_dir) if (m := pattern.match(f)))
            self.recent = [os.path.join(save_dir, f) for it, f in found if it < self.trainer.start_iter]

    def step(self, iteration: int, **kwargs: Any) -> None:
        """Save if ``iteration`` (0-based, just completed) is at a period boundary or the last one."""
        periodic = (iteration + 1) % self.period == 0
        final = self.max_iter is not None and iteration >= self.max_iter - 1
        if not (periodic or final):
            return
        additional = {"iteration": iteration, "trainer": self.trainer.state_dict(), **kwargs}
        if periodic:
            name = f"{self.file_prefix}_{iteration:07d}"
            self._save(name, additional)
            if self.max_to_keep is not None and self.checkpointer.save_to_disk:
                self.recent.append(os.path.join(self.checkpointer.save_dir, name + ".pth"))
                while len(self.recent) > self.max_to_keep:
                    old = self.recent.pop(0)
                    if os.path.exists(old) and not old.endswith(f"{self.file_prefix}_final.pth"):
                        os.remove(old)
        if final:
            self._save(f"{self.file_prefix}_final", additional)

    def _save(self, name: str, additional: dict) -> None:
        try:
            self.checkpointer.save(name, **additional)
        except FloatingPointError as e:
            raise FloatingPointError(
                f"Training diverged: after iteration {additional['iteration']} the model holds non-finite values, "
                f"so {name}.pth was not written ({e}); last_checkpoint still names the last finite checkpoint"
            ) from e

    def after_step(self):
        self.step(self.trainer.iter)


class LRScheduler(HookBase):
    """Step a torch LR scheduler after every iteration and record the ``lr`` scalar.

    The recorded LR is that of the param group with the most parameters at the largest LR (the
    "main" LR when some groups have multipliers).
    """

    def __init__(self, optimizer: torch.optim.Optimizer | None = None, scheduler=None):
        self._optimizer = optimizer
        self._scheduler = scheduler
        self._best_group: int | None = None

    def before_train(self):
        self._optimizer = self._optimizer or self.trainer.optimizer
        self._best_group = self._pick_group(self._optimizer)

    @staticmethod
    def _pick_group(optimizer) -> int:
        largest = max(len(g["params"]) for g in optimizer.param_groups)
        if largest == 1:
            lr_count = Counter(g["lr"] for g in optimizer.param_groups)
            lr = lr_count.most_common()[0][0]
            return next(i for i, g in enumerate(optimizer.param_groups) if g["lr"] == lr)
        return next(i for i, g in enumerate(optimizer.param_groups) if len(g["params"]) == largest)

    @property
    def scheduler(self):
        return self._scheduler

    def after_step(self):
        lr = self._optimizer.param_groups[self._best_group]["lr"]
        self.trainer.storage.put_scalar("lr", lr, smoothing_hint=False)
        self.scheduler.step()

    def state_dict(self):
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state_dict):
        self.scheduler.load_state_dict(state_dict)


class EvalHook(HookBase):
    """Run ``eval_function()`` every ``eval_period`` iterations and after training.

    ``eval_function`` returns a (nested) dict of numbers or ``None``; the numbers are put in the
    event storage as ``"task/metric"`` scalars (so writers and ``BestCheckpointer`` see them). It runs with the
    random generators' states preserved, so evaluating does not change the training that follows. No
    evaluation after a training that stopped on an error.
    """

    def __init__(self, eval_period: int, eval_function: Callable[[], Any], eval_after_train: bool = True):
        self._period = eval_period
        self._func = eval_function
        self._eval_after_train = eval_after_train

    def _do_eval(self):
        with preserve_rng_state():
            results = self._func()
        if results:
            if not isinstance(results, Mapping):
                raise TypeError(f"EvalHook: eval_function returned {type(results).__name__}, expected a dict")
            flat = flatten_results_dict(results)
            scalars = {}
            for k, v in flat.items():
                try:
                    scalars[k] = float(v)
                except (TypeError, ValueError) as e:
                    raise ValueError(f"EvalHook: metric '{k}' = {v!r} is not a number") from e
            self.trainer.storage.put_scalars(**scalars, smoothing_hint=False)
        # Evaluation may take different time on different ranks: wait for everyone.
        comm.synchronize()

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if self._period > 0 and next_iter % self._period == 0 and next_iter != self.trainer.max_iter:
            self._do_eval()

    def after_train(self):
        if self._eval_after_train and self.trainer.finished:
            self._do_eval()
        del self._func  # may hold references to big objects (data loaders)


class BestCheckpointer(HookBase):
    """Save ``{file_prefix}.pth`` whenever ``val_metric`` (as put by ``EvalHook``) improves.

    Register it after the ``EvalHook``, on every process (the main process decides, the trainer's state is
    gathered from all); it checks every ``eval_period`` iterations and after a finished training. The best
    value so far is part of the trainer's state, so a resumed run keeps it.
    """

    def __init__(
        self, eval_period: int, checkpointer, val_metric: str, mode: str = "max", file_prefix: str = "model_best"
    ):
        if mode not in ("max", "min"):
            raise ValueError(f"BestCheckpointer: mode must be 'max' or 'min', got {mode!r}")
        self._period = eval_period
        self._checkpointer = checkpointer
        self._val_metric = val_metric
        self._compare = operator.gt if mode == "max" else operator.lt
        self._file_prefix = file_prefix
        self.best_metric: float | None = None
        self.best_iter: int | None = None

    def _best_checking(self):
        latest = self.trainer.storage.latest().get(self._val_metric) if comm.is_main_process() else None
        if comm.is_main_process() and latest is None:
            logger.warning(f"BestCheckpointer: metric '{self._val_metric}' was not computed; no best checkpoint")
        better = latest is not None and math.isfinite(latest[0])
        better = better and (self.best_metric is None or self._compare(latest[0], self.best_metric))
        decision = comm.all_gather((better, latest), what="best-checkpoint decision")[0]
        if not decision[0]:
            return
        value, metric_iter = decision[1]
        self.best_metric, self.best_iter = value, metric_iter
        # after training the storage is at max_iter; the model is that of the last iteration, max_iter - 1
        iteration = min(metric_iter, self.trainer.max_iter - 1)
        trainer_state = self.trainer.state_dict()
        self._checkpointer.save(self._file_prefix, iteration=iteration, best_metric=value, trainer=trainer_state)
        logger.info(f"Saved best model: {self._val_metric} = {value:.5f} at iteration {metric_iter}")

    def state_dict(self) -> dict:
        return {"best_metric": self.best_metric, "best_iter": self.best_iter}

    def load_state_dict(self, state: dict) -> None:
        self.best_metric, self.best_iter = state["best_metric"], state["best_iter"]

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if self._period > 0 and next_iter % self._period == 0 and next_iter != self.trainer.max_iter:
            self._best_checking()

    def after_train(self):
        if self.trainer.finished:
            self._best_checking()


class ValidationLoss(HookBase):
    """Every ``period`` iterations, average the model's losses over ``num_batches`` batches of a
    validation loader (training mode, no gradients) and record them as ``val_<loss>`` scalars.

    The random generators' states are preserved around it, so that validating does not change training."""

    def __init__(self, model: nn.Module, data_loader: Iterable, period: int, num_batches: int = 10):
        self._model = model
        self._loader = data_loader
        self._period = period
        self._num_batches = num_batches
        self._iter = None

    def _next(self):
        if self._iter is None:
            self._iter = iter(self._loader)
        try:
            return next(self._iter)
        except StopIteration:
            self._iter = iter(self._loader)
            return next(self._iter)

    def _compute(self):
        totals: dict[str, torch.Tensor] = {}
        with torch.no_grad(), preserve_rng_state():
            for _ in range(self._num_batches):
                loss_dict = self._model(self._next())
                for k, v in loss_dict.items():
                    totals[k] = totals.get(k, 0) + v.detach().float()
        means = {k: v / self._num_batches for k, v in totals.items()}
        means = comm.reduce_dict(means)
        if comm.is_main_process():
            values = {f"val_{k}": float(v) for k, v in means.items()}
            values["val_total_loss"] = sum(values.values())
            self.trainer.storage.put_scalars(**values, smoothing_hint=False)

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if self._period > 0 and (next_iter % self._period == 0 or next_iter == self.trainer.max_iter):
            self._compute()


class PlotCurves(HookBase):
    """After a finished training, plot the scalars of ``metrics.json`` into ``curves.png`` (main process only).

    One panel for the losses (training and ``val_``), one for the LR, one for the evaluation
    metrics (any other scalar put at few iterations, e.g. ``bbox/AP``).
    """

    _SKIP = {"iteration", "data_time", "time", "eta_seconds"}

    def __init__(self, metrics_file: str, output_file: str):
        self.metrics_file = metrics_file
        self.output_file = output_file

    def after_train(self):
        if not comm.is_main_process() or not self.trainer.finished:
            return
        try:
            plot_metrics(self.metrics_file, self.output_file)
        except Exception as e:  # plotting must never break a finished training run
            logger.warning(f"PlotCurves: could not plot {self.metrics_file}: {e}")


def plot_metrics(metrics_file: str, output_file: str) -> str | None:
    """Plot the curves of a metrics.json (one JSON object per line) into ``output_file``."""
    if not os.path.isfile(metrics_file):
        logger.warning(f"PlotCurves: {metrics_file} does not exist; nothing to plot")
        return None
    series: dict[str, tuple[list, list]] = {}
    with open(metrics_file, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a half-written last line of an interrupted run
            it = rec.get("iteration")
            if it is None:
                continue
            for k, v in rec.items():
                if k in PlotCurves._SKIP or not isinstance(v, (int, float)):
                    continue
                xs, ys = series.setdefault(k, ([], []))
                xs.append(it)
                ys.append(v)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    losses = {k: v for k, v in series.items() if "loss" in k}
    lr = {k: v for k, v in series.items() if k == "lr"}
    others = {k: v for k, v in series.items() if k not in losses and k not in lr}
    panels = [(t, d) for t, d in (("losses", losses), ("learning rate", lr), ("metrics", others)) if d]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), squeeze=False)
    for ax, (title, data) in zip(axes[:, 0], panels):
        for k, (xs, ys) in sorted(data.items()):
            ax.plot(xs, ys, marker="o" if len(xs) < 20 else None, markersize=3, label=k)
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(output_file)), exist_ok=True)
    fig.savefig(output_file, dpi=100)
    plt.close(fig)
    return output_file
