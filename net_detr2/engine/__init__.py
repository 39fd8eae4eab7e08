"""Training engine: loops, hooks, the LazyConfig-driven ``DefaultTrainer``, set-up and launching."""

from __future__ import annotations

from .defaults import (
    DefaultTrainer,
    check_train_config,
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
)
from .hooks import (
    BestCheckpointer,
    CallbackHook,
    EvalHook,
    IterationTimer,
    LRScheduler,
    PeriodicCheckpointer,
    PeriodicWriter,
    PlotCurves,
    ValidationLoss,
)
from .launch import launch
from .train_loop import AMPTrainer, HookBase, SimpleTrainer, TrainerBase

__all__ = [
    "DefaultTrainer",
    "check_train_config",
    "create_ddp_model",
    "default_argument_parser",
    "default_setup",
    "default_writers",
    "BestCheckpointer",
    "CallbackHook",
    "EvalHook",
    "IterationTimer",
    "LRScheduler",
    "PeriodicCheckpointer",
    "PeriodicWriter",
    "PlotCurves",
    "ValidationLoss",
    "launch",
    "AMPTrainer",
    "HookBase",
    "SimpleTrainer",
    "TrainerBase",
    "hooks",
]
from . import hooks  # noqa: E402
