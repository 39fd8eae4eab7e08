"""The training loop: ``TrainerBase`` runs hooks around ``run_step``; ``SimpleTrainer`` implements the one
optimisation step (fp32, or mixed precision with an autocast dtype and, for CUDA float16, a gradient scaler;
optionally over several micro-batches, and followed by an update of an average of the weights)."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from net_detr2.solver.ema import ModelEMA
from net_detr2.utils import comm
from net_detr2.utils.amp import AMP_DTYPES, autocast, needs_grad_scaler, resolve_amp_dtype
from net_detr2.utils.env import get_rng_state, set_rng_state
from net_detr2.utils.events import EventStorage, get_event_storage
from net_detr2.utils.module_utils import model_device, unwrap_model

__all__ = ["HookBase", "TrainerBase", "SimpleTrainer", "AMPTrainer", "write_metrics"]

logger = logging.getLogger(__name__)


class HookBase:
    """Code run at fixed points of training. ``self.trainer`` is set by ``register_hooks``.

    Order per iteration: ``before_step``, (the step, with ``after_backward`` inside it),
    ``after_step``; ``before_train``/``after_train`` once. ``after_train`` also runs when training
    stops with an exception: hooks with side effects (evaluation, pictures) check ``trainer.finished``.
    A hook with state to keep across a resume returns it from ``state_dict`` (saved in every checkpoint,
    keyed by the hook's class name) and takes it back in ``load_state_dict``.
    """

    trainer: TrainerBase = None

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_backward(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def state_dict(self) -> dict:
        return {}


class TrainerBase:
    """Iteration loop with hooks. Attributes: ``iter``, ``start_iter``, ``max_iter``, ``storage``, and
    ``finished``: True only once the loop ended without an exception, after the iterations up to ``max_iter``
    or earlier on a hook's `request_stop` (then ``stop_reason`` says why)."""

    def __init__(self) -> None:
        self._hooks: list[HookBase] = []
        self.iter: int = 0
        self.start_iter: int = 0
        self.max_iter: int = 0
        self.finished: bool = False
        self.stop_reason: str | None = None
        self.storage: EventStorage | None = None

    def register_hooks(self, hooks: Iterable[HookBase | None]) -> None:
        """Append hooks (``None`` entries are ignored); they run in registration order."""
        hooks = [h for h in hooks if h is not None]
        for h in hooks:
            if not isinstance(h, HookBase):
                raise TypeError(f"register_hooks: {h!r} is not a HookBase")
            # A weak proxy avoids a reference cycle trainer <-> hook.
            h.trainer = weakref.proxy(self)
        self._hooks.extend(hooks)

    def request_stop(self, reason: str) -> None:
        """End training after the current iteration's ``after_step`` hooks (e.g. early stopping): the loop
        stops, and ``after_train`` hooks see a finished training (final checkpoint, final evaluation, ...)
        whose last completed iteration is ``iter - 1``. Every process must request it at the same iteration."""
        self.stop_reason = reason

    def train(self, start_iter: int, max_iter: int) -> None:
        """Run iterations ``start_iter .. max_iter - 1`` (fewer when a hook calls `request_stop`)."""
        logger.info(f"Starting training from iteration {start_iter}")
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        self.finished = False
        self.stop_reason = None
        with EventStorage(start_iter) as self.storage:
            try:
                self.before_train()
                for self.iter in range(start_iter, max_iter):
                    self.before_step()
                    self.run_step()
                    self.after_step()
                    if self.stop_reason is not None:
                        logger.info(f"Training stops after iteration {self.iter}: {self.stop_reason}")
                        self.iter += 1
                        break
                else:
                    self.iter = max_iter
                # iter (the number of completed iterations) and finished tell after_train hooks that training
                # ended normally.
                self.finished = True
            except Exception:
                logger.exception(f"Exception during training at iteration {self.iter}:")
                raise
            finally:
                self.after_train()

    def before_train(self) -> None:
        for h in self._hooks:
            h.before_train()

    def after_train(self) -> None:
        self.storage.iter = self.iter
        for h in self._hooks:
            h.after_train()

    def before_step(self) -> None:
        # Keep the storage's iteration in sync so metrics are recorded at the right step.
        self.storage.iter = self.iter
        for h in self._hooks:
            h.before_step()

    def after_backward(self) -> None:
        for h in self._hooks:
            h.after_backward()

    def after_step(self) -> None:
        for h in self._hooks:
            h.after_step()

    def run_step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        ret: dict[str, Any] = {"iteration": self.iter}
        hooks_state = {}
        for h in self._hooks:
            sd = h.state_dict()
            if sd:
                name = type(h).__qualname__
                if name in hooks_state:
                    continue  # several hooks of one type: state is ambiguous, keep the first
                hooks_state[name] = sd
        if hooks_state:
            ret["hooks"] = hooks_state
        return ret

    def load_state_dict(self, state_dict: dict) -> None:
        self.iter = state_dict["iteration"]
        for key, value in state_dict.get("hooks", {}).items():
            for h in self._hooks:
                if type(h).__qualname__ == key and hasattr(h, "load_state_dict"):
                    h.load_state_dict(value)
                    break
            else:
                logger.warning(f"Cannot find the hook '{key}', its state_dict is ignored.")


class SimpleTrainer(TrainerBase):
    """One step = next batch -> ``model(batch)`` loss dict (under autocast when ``amp_dtype`` is set) -> sum
    -> backward (scaled by ``grad_scaler``) -> (clip) -> optimizer step -> (several processes) rank 0's
    buffers to every rank -> (``ema``) update of the average of the weights.

    With ``grad_accum_steps = k > 1`` one step (one iteration) takes k batches: each one's summed loss, divided
    by k, is back-propagated (under DDP's ``no_sync`` but the last, so the gradients are all-reduced once),
    then clipping and the optimizer step act on the accumulated gradients. Iterations, the LR schedule and
    checkpoint/evaluation periods count optimizer steps; the recorded losses are the means over the k batches.

    Args:
        model: returns ``dict[str, Tensor]`` of scalar losses in training mode.
        data_loader: an iterable of batches (may be set later via ``reset_data_loader``, before ``train()``).
            With ``state_dict``/``load_state_dict`` (`TrainingDataLoader`) its place in the stream is
            checkpointed, so a resumed run sees the same batches.
        optimizer: a torch optimizer.
        gather_metric_period: write metrics every this many iterations (the non-finite check runs
            on every step).
        zero_grad_before_forward: call ``zero_grad`` before the forward (else after it).
        amp_dtype: autocast dtype of the forward pass (``torch.bfloat16``/``torch.float16``), ``None`` for fp32;
            see `net_detr2.utils.amp.resolve_amp_dtype`.
        grad_scaler: a ``torch.amp.GradScaler``; default: one enabled only for CUDA float16.
        clip_grad: ``None`` or kwargs of ``torch.nn.utils.clip_grad_norm_`` (e.g. ``{"max_norm": 1.0}``).
        sync_buffers: with several processes, copy rank 0's buffers (BatchNorm statistics) to every rank after
            each step, so that all ranks evaluate and save the same model.
        grad_accum_steps: batches (micro-batches) per optimizer step.
        ema: a `ModelEMA` of ``model``, updated after every optimizer step (None: no average).
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable | None,
        optimizer: torch.optim.Optimizer,
        gather_metric_period: int = 1,
        zero_grad_before_forward: bool = False,
        *,
        amp_dtype: torch.dtype | None = None,
        grad_scaler: torch.amp.GradScaler | None = None,
        clip_grad: Mapping[str, Any] | None = None,
        sync_buffers: bool = True,
        grad_accum_steps: int = 1,
        ema: ModelEMA | None = None,
    ):
        super().__init__()
        if not isinstance(grad_accum_steps, int) or isinstance(grad_accum_steps, bool) or grad_accum_steps < 1:
            raise ValueError(f"SimpleTrainer: grad_accum_steps must be a positive integer, got {grad_accum_steps!r}")
        model.train()
        self.model = model
        self.data_loader = data_loader
        self._data_loader_iter_obj = None
        self.optimizer = optimizer
        self.gather_metric_period = gather_metric_period
        self.zero_grad_before_forward = zero_grad_before_forward
        self.clip_grad = dict(clip_grad) if clip_grad else None
        self.device = model_device(model)
        self.amp_dtype = amp_dtype
        if grad_scaler is None:
            grad_scaler = torch.amp.GradScaler("cuda", enabled=needs_grad_scaler(amp_dtype, self.device))
        self.grad_scaler = grad_scaler
        self.sync_buffers = sync_buffers
        self.grad_accum_steps = grad_accum_steps
        self.ema = ema

    @property
    def _data_loader_iter(self):
        # Created lazily so the data loader can be (re)assigned or restored before training starts.
        if self._data_loader_iter_obj is None:
            if self.data_loader is None:
                raise RuntimeError("SimpleTrainer has no data_loader: assign one before train()")
            self._data_loader_iter_obj = iter(self.data_loader)
        return self._data_loader_iter_obj

    def reset_data_loader(self, data_loader: Iterable) -> None:
        self.data_loader = data_loader
        self._data_loader_iter_obj = None

    def _params_to_clip(self) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]

    def run_step(self) -> None:
        assert self.model.training, f"[{type(self).__name__}] model was changed to eval mode!"
        k = self.grad_accum_steps
        data_time = 0.0
        loss_dicts = []
        if self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        for micro in range(k):
            last = micro == k - 1
            start = time.perf_counter()
            data = next(self._data_loader_iter)
            data_time += time.perf_counter() - start
            # DDP all-reduces the gradients in the last backward only; the others accumulate locally
            no_sync = self.model.no_sync() if not last and isinstance(self.model, DistributedDataParallel) else None
            with no_sync or nullcontext():
                with autocast(self.device, self.amp_dtype):
                    loss_dict = self.model(data)
                if isinstance(loss_dict, torch.Tensor):
                    loss_dict = {"total_loss": loss_dict}
                losses = sum(loss_dict.values())
                if micro == 0 and not self.zero_grad_before_forward:
                    self.optimizer.zero_grad()
                if k > 1:
                    losses = losses / k
                all_reduce = comm.collective(f"backward with the gradient all-reduce, iteration {self.iter}")
                # a disabled scaler (fp32, bf16) passes the loss and the step through unchanged
                with all_reduce if last else nullcontext():
                    self.grad_scaler.scale(losses).backward()
            loss_dicts.append({name: loss.detach() for name, loss in loss_dict.items()})  # the graph can go
        self.after_backward()
        if self.clip_grad:
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self._params_to_clip(), **self.clip_grad)
        self._write_metrics(loss_dicts[0] if k == 1 else _mean_loss_dict(loss_dicts), data_time)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()
        if self.sync_buffers:
            broadcast_buffers(self.model)
        if self.ema is not None:
            self.ema.update(self.model)

    def _write_metrics(self, loss_dict: Mapping[str, torch.Tensor], data_time: float, prefix: str = "") -> None:
        """Check losses are finite (raises ``FloatingPointError``) and record them.

        One device->host copy per step: all losses are stacked and moved to the CPU together.
        """
        write_metrics(
            loss_dict, data_time, self.iter, prefix=prefix, gather=(self.iter + 1) % self.gather_metric_period == 0
        )

    def state_dict(self) -> dict:
        """Iteration, hooks' state, the optimizer, the gradient scaler, the random generators of every rank and
        the data loader's place in its stream. Collective with several processes (every rank must call it)."""
        ret = super().state_dict()
        ret["optimizer"] = self.optimizer.state_dict()
        ret["grad_scaler"] = self.grad_scaler.state_dict()
        ret["rng"] = comm.all_gather(get_rng_state(), what="gather of the random generators' states for a checkpoint")
        if hasattr(self.data_loader, "state_dict"):
            ret["data_loader"] = self.data_loader.state_dict()
        return ret

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        if "optimizer" in state_dict:
            self.optimizer.load_state_dict(state_dict["optimizer"])
        if state_dict.get("grad_scaler"):
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
        self.load_rng_and_data_state(state_dict)

    def load_rng_and_data_state(self, state_dict: dict) -> None:
        """Take back this rank's random generators and the data loader's place (when saved), warning about
        what cannot be restored, after which a resumed run differs from an uninterrupted one."""
        rng, rank = state_dict.get("rng"), comm.get_rank()
        if rng is not None and rank < len(rng):
            set_rng_state(rng[rank])
        else:
            logger.warning(
                f"The checkpoint has no random-generator state for rank {rank}: the resumed run draws other "
                "random numbers (RoI sampling, ...) than an uninterrupted one"
            )
        if "data_loader" in state_dict and hasattr(self.data_loader, "load_state_dict"):
            self.data_loader.load_state_dict(state_dict["data_loader"])
        else:
            logger.warning(
                f"The data loader ({type(self.data_loader).__name__}) cannot be restored to its place: the resumed "
                "run does not see the batches an uninterrupted one would (use build_detection_train_loader)"
            )


class AMPTrainer(SimpleTrainer):
    """`SimpleTrainer` with mixed precision given as a dtype (detectron2's interface): ``precision`` float16 or
    bfloat16 on CUDA (a gradient scaler for float16), bfloat16 on a CPU with bf16 units; otherwise fp32 with
    one warning (see `net_detr2.utils.amp.resolve_amp_dtype`). The step is `SimpleTrainer`'s."""

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable | None,
        optimizer: torch.optim.Optimizer,
        gather_metric_period: int = 1,
        zero_grad_before_forward: bool = False,
        grad_scaler: torch.amp.GradScaler | None = None,
        precision: torch.dtype = torch.float16,
        **kwargs: Any,
    ):
        names = {v: k for k, v in AMP_DTYPES.items()}
        if precision not in names:
            raise ValueError(f"AMPTrainer: precision must be torch.float16 or torch.bfloat16, got {precision}")
        amp_dtype = resolve_amp_dtype(True, names[precision], model_device(model))
        super().__init__(
            model,
            data_loader,
            optimizer,
            gather_metric_period,
            zero_grad_before_forward,
            amp_dtype=amp_dtype,
            grad_scaler=grad_scaler,
            **kwargs,
        )
        self.precision = precision


def _mean_loss_dict(loss_dicts: list[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of each loss over the micro-batches of one step (over those that returned it)."""
    names = dict.fromkeys(name for d in loss_dicts for name in d)
    return {name: torch.stack([d[name].detach().float() for d in loss_dicts if name in d]).mean() for name in names}


def broadcast_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers into every rank's model (one broadcast per dtype; nothing with one process)."""
    if comm.get_world_size() == 1:
        return
    module = unwrap_model(model)
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for buf in module.buffers():
        by_dtype.setdefault(buf.dtype, []).append(buf)
    for bufs in by_dtype.values():
        flat = torch.cat([b.detach().reshape(-1) for b in bufs])
        comm.broadcast(flat, src=0, what="broadcast of rank 0's buffers (BatchNorm statistics)")
        offset = 0
        for b in bufs:
            b.data.copy_(flat[offset : offset + b.numel()].view_as(b))
            offset += b.numel()


def write_metrics(
    loss_dict: Mapping[str, torch.Tensor], data_time: float, iteration: int, prefix: str = "", gather: bool = True
) -> None:
    """Raise ``FloatingPointError`` if the summed loss is not finite; put losses into the event storage.

    Across ranks, the per-rank values are gathered so that every rank raises together and rank 0
    logs the average.
    """
    names = list(loss_dict.keys())
    values = torch.stack([v.detach().float().reshape(()) for v in loss_dict.values()]).cpu().numpy()
    local = {"data_time": data_time, "values": values}
    all_metrics = comm.all_gather(local, what=f"gather of the losses, iteration {iteration}")
    stacked = np.stack([m["values"] for m in all_metrics])  # (world, num_losses)
    total = stacked.sum(axis=1)
    if not np.isfinite(total).all():
        bad_ranks = [r for r, t in enumerate(total) if not np.isfinite(t)]
        loss_str = {n: float(v) for n, v in zip(names, stacked[bad_ranks[0]])}
        raise FloatingPointError(
            f"Loss became infinite or NaN at iteration={iteration}!\nloss_dict = {loss_str}"
            + (f" (rank {bad_ranks[0]})" if len(all_metrics) > 1 else "")
        )
    if not gather or not comm.is_main_process():
        return
    storage = get_event_storage()
    mean = stacked.mean(axis=0)
    storage.put_scalar("data_time", max(m["data_time"] for m in all_metrics))
    storage.put_scalar(f"{prefix}total_loss", float(mean.sum()))
    if len(names) > 1 or names[0] != "total_loss":
        storage.put_scalars(**{f"{prefix}{n}": float(v) for n, v in zip(names, mean)})
