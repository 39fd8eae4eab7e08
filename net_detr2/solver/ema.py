"""``ModelEMA``: an exponential moving average of a model's weights (parameters and buffers), in fp32.

After every optimizer step ``ema = d * ema + (1 - d) * weights`` for each floating-point entry of the model's
state dict (parameters and buffers such as BatchNorm statistics); integer entries (``num_batches_tracked``)
are copied. The decay warms up as ``d_n = decay * (1 - exp(-n / warmup_iters))`` for the n-th update (the
rule of the YOLOv5 family: early averages follow the fast-changing weights closely, and ``d_n`` reaches
``decay`` after a few ``warmup_iters``); ``warmup_iters=0`` keeps ``d_n = decay``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from net_detr2.utils.module_utils import unwrap_model

__all__ = ["ModelEMA"]


class ModelEMA:
    """The averaged weights of ``model`` (unwrapped from DistributedDataParallel), on the model's device.

    Args:
        model: the trained model; the average starts as a copy of its current weights.
        decay: the decay the warm-up tends to, in (0, 1).
        warmup_iters: time constant of the decay's warm-up, in updates (0: none).

    ``update(model)`` after each optimizer step; ``state_dict()`` is the averaged weights under the model's
    state-dict names (loadable into the model); ``applied_to(model)`` swaps them in for an evaluation.
    """

    def __init__(self, model: nn.Module, decay: float, warmup_iters: int = 0):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ModelEMA: decay must be in (0, 1), got {decay!r}")
        if warmup_iters < 0:
            raise ValueError(f"ModelEMA: warmup_iters must be >= 0, got {warmup_iters!r}")
        self.decay = float(decay)
        self.warmup_iters = int(warmup_iters)
        self.num_updates = 0
        self.weights: dict[str, torch.Tensor] = {}
        self.reset(model)

    def reset(self, model: nn.Module) -> None:
        """Restart the average from the model's current weights (after loading new ones)."""
        self.weights = {
            name: t.detach().float().clone() if t.is_floating_point() else t.detach().clone()
            for name, t in unwrap_model(model).state_dict().items()
        }
        self.num_updates = 0

    def decay_at(self, n: int) -> float:
        """The decay of the ``n``-th update (1-based)."""
        if self.warmup_iters == 0:
            return self.decay
        return self.decay * (1.0 - math.exp(-n / self.warmup_iters))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """``ema += (1 - d) * (weights - ema)`` for floating-point entries (in fp32), copy the others."""
        self.num_updates += 1
        weight = 1.0 - self.decay_at(self.num_updates)
        averaged, current = [], []
        for name, t in unwrap_model(model).state_dict().items():
            if t.is_floating_point():
                averaged.append(self.weights[name])
                current.append(t.detach().float())
            else:
                self.weights[name].copy_(t)
        if averaged:
            # lerp leaves an entry that the model did not change (frozen parameters, FrozenBN) exactly as it is
            torch._foreach_lerp_(averaged, current, weight)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights, named like the model's state dict (a checkpoint's ``model`` entry)."""
        return dict(self.weights)

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor], num_updates: int) -> None:
        """Take averaged weights (the model's names and shapes) and the number of updates they hold."""
        missing = sorted(set(self.weights) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(self.weights))
        if missing or unexpected:
            raise KeyError(f"ModelEMA: the averaged weights lack {missing} and have unexpected {unexpected}")
        for name, t in self.weights.items():
            t.copy_(state_dict[name])
        self.num_updates = int(num_updates)

    @contextmanager
    def applied_to(self, model: nn.Module) -> Iterator[None]:
        """Within the block ``model`` holds the averaged weights; its own come back afterwards, bit for bit."""
        module = unwrap_model(model)
        own = {name: t.detach().clone() for name, t in module.state_dict().items()}
        module.load_state_dict(self.weights)
        try:
            yield
        finally:
            module.load_state_dict(own)
