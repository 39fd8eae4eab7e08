"""Optimizers' parameter groups, LR schedules and the moving average of the weights."""

from __future__ import annotations

from .build import build_optimizer, freeze_parameters, get_default_optimizer_params, reduce_param_groups
from .ema import ModelEMA
from .lr_scheduler import (
    CosineParamScheduler,
    LRMultiplier,
    MultiStepParamScheduler,
    WarmupParamScheduler,
    cosine_with_warmup,
    multistep_with_warmup,
)

__all__ = [
    "ModelEMA",
    "build_optimizer",
    "freeze_parameters",
    "get_default_optimizer_params",
    "reduce_param_groups",
    "CosineParamScheduler",
    "LRMultiplier",
    "MultiStepParamScheduler",
    "WarmupParamScheduler",
    "cosine_with_warmup",
    "multistep_with_warmup",
]
