"""Optimizer parameter groups: weight decay per parameter kind and per-name LR multipliers."""

from __future__ import annotations

import copy
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["get_default_optimizer_params", "reduce_param_groups", "build_optimizer", "NORM_MODULE_TYPES"]

logger = logging.getLogger(__name__)

NORM_MODULE_TYPES: tuple[type, ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def _is_norm(module: nn.Module) -> bool:
    # Our own norm layers (FrozenBatchNorm2d, custom LayerNorm variants) are matched by name so this
    # module needs no import of net_detr2.layers.
    return isinstance(module, NORM_MODULE_TYPES) or "Norm" in type(module).__name__


def get_default_optimizer_params(
    model: nn.Module,
    base_lr: float | None = None,
    weight_decay: float | None = None,
    weight_decay_norm: float | None = 0.0,
    weight_decay_bias: float | None = 0.0,
    overrides: dict[str, dict[str, float]] | None = None,
    lr_factor_func: Callable[[str], float] | None = None,
) -> list[dict[str, Any]]:
    """Parameter groups for a ``torch.optim`` optimizer.

    Args:
        model: the model; parameters with ``requires_grad=False`` are skipped, and a parameter
            shared by several modules appears once (under its first name).
        base_lr, weight_decay: defaults of every group; ``None`` leaves them to the optimizer's own
            arguments (``lr=``/``weight_decay=``), which is how the LazyCall configs use it.
        weight_decay_norm: weight decay of normalization layers' parameters (0 by default;
            ``None`` -> the default weight decay).
        weight_decay_bias: weight decay of the biases of other layers (0 by default: decaying a
            bias only pulls activations towards zero; ``None`` -> the default weight decay, as detectron2 does).
        overrides: ``{name: {hyperparameter: value}}`` for parameters whose local name (e.g.
            ``"bias"``, ``"pos_embed"``) or full name (``"backbone.stem.conv1.weight"``) is ``name``.
        lr_factor_func: ``full_name -> factor`` multiplying the LR of each parameter (needs ``base_lr``).

    Returns:
        list of groups ``{"params": [...], "lr": ..., "weight_decay": ...}``, merged so that
        parameters with identical hyper-parameters share a group.
    """
    overrides = dict(overrides or {})
    defaults: dict[str, float] = {}
    if base_lr is not None:
        defaults["lr"] = base_lr
    if weight_decay is not None:
        defaults["weight_decay"] = weight_decay
    bias_overrides: dict[str, float] = {}
    if weight_decay_bias is not None:
        bias_overrides["weight_decay"] = weight_decay_bias
    if bias_overrides:
        if "bias" in overrides:
            raise ValueError("Conflicting overrides for 'bias': use weight_decay_bias or overrides['bias'], not both")
        overrides["bias"] = bias_overrides
    if lr_factor_func is not None and base_lr is None:
        raise ValueError("lr_factor_func requires base_lr")

    params: list[dict[str, Any]] = []
    memo: set[int] = set()
    for module_name, module in model.named_modules():
        for local_name, value in module.named_parameters(recurse=False):
            if not value.requires_grad or id(value) in memo:
                continue
            memo.add(id(value))
            full_name = f"{module_name}.{local_name}" if module_name else local_name
            hyperparams = copy.copy(defaults)
            if _is_norm(module) and weight_decay_norm is not None:
                hyperparams["weight_decay"] = weight_decay_norm
            if lr_factor_func is not None:
                hyperparams["lr"] = hyperparams["lr"] * lr_factor_func(full_name)
            hyperparams.update(overrides.get(local_name, {}))
            hyperparams.update(overrides.get(full_name, {}))
            params.append({"params": [value], **hyperparams})
    return reduce_param_groups(params)


def reduce_param_groups(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge groups with identical hyper-parameters (fewer groups -> faster optimizer steps).

    Order: groups appear in the order of their first parameter.
    """
    groups: dict[tuple, list] = defaultdict(list)
    for item in params:
        key = tuple(sorted((k, v) for k, v in item.items() if k != "params"))
        groups[key].extend(item["params"])
    return [{"params": ps, **dict(key)} for key, ps in groups.items()]


def build_optimizer(optimizer_cfg: Any, model: nn.Module) -> torch.optim.Optimizer:
    """Instantiate a LazyCall optimizer node whose ``params.model`` is filled with ``model``.

    ``params.model`` is set only for the call and then restored, so the config (which may be
    saved or reused) does not keep a reference to the model; the node is not copied, so
    interpolations to other parts of the config (``${train.max_iter}``) still resolve.
    """
    from net_detr2.config import instantiate

    params = optimizer_cfg["params"]
    if not (hasattr(params, "keys") and "_target_" in params):
        return instantiate(optimizer_cfg)
    had_model = "model" in params
    previous = params["model"] if had_model else None
    params["model"] = model
    try:
        return instantiate(optimizer_cfg)
    finally:
        if had_model:
            params["model"] = previous
        else:
            del params["model"]


def freeze_parameters(model: nn.Module, trainable_patterns: list[str] | None) -> tuple[int, int]:
    """Keep training only the parameters whose name matches one of ``trainable_patterns``.

    Patterns are regular expressions matched at the start of the full parameter name
    (``re.match``), e.g. ``"backbone\\.fpn"`` or ``".*ftt"``. ``None`` changes nothing.

    Returns:
        (number of trainable parameter tensors, number frozen) — counted over all parameters.
    """
    named = list(model.named_parameters())
    if trainable_patterns is None:
        n_train = sum(1 for _, p in named if p.requires_grad)
        return n_train, len(named) - n_train
    if isinstance(trainable_patterns, str):
        trainable_patterns = [trainable_patterns]
    compiled = [re.compile(p) for p in trainable_patterns]
    used = [False] * len(compiled)
    n_train = 0
    for name, p in named:
        hit = False
        for i, rx in enumerate(compiled):
            if rx.match(name):
                used[i] = True
                hit = True
        p.requires_grad_(hit)
        n_train += int(hit)
    for rx, u in zip(trainable_patterns, used):
        if not u:
            logger.warning(f"train.trainable_params: pattern {rx!r} matches no parameter name")
    if n_train == 0:
        raise ValueError(f"train.trainable_params={list(trainable_patterns)} matches no parameter: nothing would train")
    return n_train, len(named) - n_train
