"""Training engine: loops, hooks, the LazyConfig-driven ``DefaultTrainer``, set-up and launching."""

from __future__ import annotations

from .defaults import (
    CheckpointEvaluation,
    DefaultTrainer,
    check_train_config,
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
    evaluate_checkpoint,
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
    "CheckpointEvaluation",
    "DefaultTrainer",
    "evaluate_checkpoint",
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
