"""LR schedules: fvcore ``ParamScheduler`` multipliers applied per iteration to torch optimizers."""

from __future__ import annotations

from typing import Any

import torch
from fvcore.common.param_scheduler import (
    CompositeParamScheduler,
    ConstantParamScheduler,
    CosineParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    ParamScheduler,
)

__all__ = [
    "WarmupParamScheduler",
    "LRMultiplier",
    "multistep_with_warmup",
    "cosine_with_warmup",
    "ParamScheduler",
    "MultiStepParamScheduler",
    "CosineParamScheduler",
    "ConstantParamScheduler",
    "LinearParamScheduler",
    "CompositeParamScheduler",
]


class WarmupParamScheduler(ParamScheduler):
    """Prefix ``scheduler`` with a warm-up over the first ``warmup_length`` fraction of training.

    During warm-up the value goes from ``warmup_factor * scheduler(0)`` to ``scheduler(warmup_length)``
    linearly (``warmup_method="linear"``) or stays at the start value (``"constant"``). After it, the
    value is ``scheduler(where)`` (or, with ``rescale_interval``, ``scheduler`` stretched over the
    remaining interval).
    """

    def __init__(
        self,
        scheduler: ParamScheduler,
        warmup_factor: float,
        warmup_length: float,
        warmup_method: str = "linear",
        rescale_interval: bool = False,
    ):
        # 1.0 (warm-up over the whole run) is what detectron2 makes of WARMUP_ITERS >= MAX_ITER.
        if not 0.0 <= warmup_length <= 1.0 or (rescale_interval and warmup_length == 1.0):
            raise ValueError(f"warmup_length must be in [0, 1] ([0, 1) with rescale_interval), got {warmup_length}")
        if warmup_method not in ("linear", "constant"):
            raise ValueError(f"warmup_method must be 'linear' or 'constant', got {warmup_method!r}")
        self.scheduler = scheduler
        self.warmup_factor = warmup_factor
        self.warmup_length = warmup_length
        self.warmup_method = warmup_method
        self.rescale_interval = rescale_interval

    def _main(self, where: float) -> float:
        if self.rescale_interval:
            where = (where - self.warmup_length) / (1.0 - self.warmup_length)
        return self.scheduler(min(max(where, 0.0), 1.0))

    def __call__(self, where: float) -> float:
        if where < self.warmup_length:
            start = self.warmup_factor * self.scheduler(0.0)
            if self.warmup_method == "constant":
                return start
            end = self._main(self.warmup_length)
            alpha = where / self.warmup_length
            return start + (end - start) * alpha
        return self._main(where)


class LRMultiplier(torch.optim.lr_scheduler.LRScheduler):
    """``lr = base_lr * multiplier(iteration / max_iter)`` for every param group.

    Step it once per iteration (the ``LRScheduler`` hook does). Its state is only ``last_epoch``
    and ``base_lrs``, so it can be checkpointed and resumed.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, multiplier: ParamScheduler, max_iter: int, last_iter: int = -1
    ):
        if not isinstance(multiplier, ParamScheduler):
            raise TypeError(
                f"LRMultiplier needs an fvcore ParamScheduler as multiplier, got {type(multiplier).__name__}"
            )
        if max_iter <= 0:
            raise ValueError(f"LRMultiplier: max_iter must be positive, got {max_iter}")
        self._multiplier = multiplier
        self._max_iter = max_iter
        super().__init__(optimizer, last_epoch=last_iter)

    def state_dict(self) -> dict[str, Any]:
        # The multiplier is rebuilt from the config; only the position and base LRs are state.
        return {"base_lrs": self.base_lrs, "last_epoch": self.last_epoch}

    def get_lr(self) -> list[float]:
        multiplier = self._multiplier(min(self.last_epoch / self._max_iter, 1.0))
        return [base_lr * multiplier for base_lr in self.base_lrs]


def multistep_with_warmup(
    max_iter: int,
    steps: list[int] | tuple[int, ...],
    gamma: float = 0.1,
    warmup_iters: int = 1000,
    warmup_factor: float = 0.001,
):
    """LazyCall node: LR x1 until ``steps[0]``, x``gamma`` until ``steps[1]``, ...; linear warm-up.

    All numbers are in iterations; the node is a ``WarmupParamScheduler`` for ``cfg.lr_multiplier``.
    """
    from net_detr2.config import LazyCall as L

    steps = list(steps)
    if any(s >= max_iter for s in steps) or steps != sorted(steps):
        raise ValueError(f"steps {steps} must be increasing and below max_iter={max_iter}")
    return L(WarmupParamScheduler)(
        scheduler=L(MultiStepParamScheduler)(
            values=[gamma**i for i in range(len(steps) + 1)], milestones=steps, num_updates=max_iter
        ),
        warmup_length=warmup_iters / max_iter,
        warmup_factor=warmup_factor,
    )


def cosine_with_warmup(max_iter: int, warmup_iters: int = 1000, warmup_factor: float = 0.001, end_value: float = 0.0):
    """LazyCall node: cosine decay of the multiplier from 1 to ``end_value`` with linear warm-up."""
    from net_detr2.config import LazyCall as L

    return L(WarmupParamScheduler)(
        scheduler=L(CosineParamScheduler)(start_value=1.0, end_value=end_value),
        warmup_length=warmup_iters / max_iter,
        warmup_factor=warmup_factor,
    )
