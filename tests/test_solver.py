"""Solver: parameter groups (weight decay, LR factors, shared/frozen params) and LR schedules."""

from __future__ import annotations

import math

import pytest
import torch
from fvcore.common.param_scheduler import MultiStepParamScheduler
from omegaconf import DictConfig
from torch import nn

from net_detr2.config import LazyCall as L
from net_detr2.config import instantiate
from net_detr2.solver import (
    LRMultiplier,
    WarmupParamScheduler,
    build_optimizer,
    cosine_with_warmup,
    freeze_parameters,
    get_default_optimizer_params,
    multistep_with_warmup,
)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.GroupNorm(2, 4))
        self.head = nn.Linear(4, 2)
        self.tied = nn.Linear(2, 2, bias=False)
        self.tied_again = self.tied  # shared module: its weight must appear once
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def _groups_by_param(groups, model):
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: {k: v for k, v in g.items() if k != "params"} for g in groups for p in g["params"]}


def test_weight_decay_groups():
    model = Net()
    groups = get_default_optimizer_params(model, base_lr=0.1, weight_decay=1e-4)
    by = _groups_by_param(groups, model)
    assert sorted(by) == [
        "backbone.0.bias",
        "backbone.0.weight",
        "backbone.1.bias",
        "backbone.1.weight",
        "backbone.2.bias",
        "backbone.2.weight",
        "head.bias",
        "head.weight",
        "tied.weight",
    ]
    for n in ("backbone.1.weight", "backbone.1.bias", "backbone.2.weight", "backbone.2.bias"):
        assert by[n] == {"lr": 0.1, "weight_decay": 0.0}  # norm layers: no decay
    for n in ("backbone.0.bias", "head.bias"):
        assert by[n] == {"lr": 0.1, "weight_decay": 0.0}  # biases: no decay unless asked
    for n in ("backbone.0.weight", "head.weight", "tied.weight"):
        assert by[n] == {"lr": 0.1, "weight_decay": 1e-4}
    assert len(groups) == 2  # merged by identical hyper-parameters
    assert sum(len(g["params"]) for g in groups) == 9

    groups = get_default_optimizer_params(
        model, base_lr=0.1, weight_decay=1e-4, weight_decay_bias=None, weight_decay_norm=None
    )
    by = _groups_by_param(groups, model)
    assert by["head.bias"]["weight_decay"] == 1e-4 and by["backbone.0.bias"]["weight_decay"] == 1e-4
    assert by["backbone.1.weight"]["weight_decay"] == 1e-4  # norm decay None -> the default decay
    assert by["head.weight"]["weight_decay"] == 1e-4


def test_lr_factors_and_overrides():
    model = Net()
    groups = get_default_optimizer_params(
        model,
        base_lr=0.1,
        weight_decay=1e-4,
        lr_factor_func=lambda name: 0.5 if name.startswith("backbone.") else 1.0,
        overrides={"head.bias": {"lr": 1.0}, "weight": {"weight_decay": 0.5}},
    )
    by = _groups_by_param(groups, model)
    assert by["backbone.0.bias"] == {"lr": 0.05, "weight_decay": 0.0}
    assert by["backbone.0.weight"] == {"lr": 0.05, "weight_decay": 0.5}  # override by local name
    assert by["head.bias"] == {"lr": 1.0, "weight_decay": 0.0}  # override by full name
    assert by["head.weight"] == {"lr": 0.1, "weight_decay": 0.5}
    with pytest.raises(ValueError, match="lr_factor_func requires base_lr"):
        get_default_optimizer_params(model, lr_factor_func=lambda n: 1.0)


def test_build_optimizer_from_lazy_node():
    model = Net()
    node = L(torch.optim.SGD)(
        params=L(get_default_optimizer_params)(weight_decay_norm=0.0), lr=0.3, weight_decay=1e-3, momentum=0.9
    )
    opt = build_optimizer(node, model)
    assert "model" not in node.params  # the caller's config is untouched
    assert {g["lr"] for g in opt.param_groups} == {0.3}
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 1e-3]
    # Interpolations into the rest of the config resolve (the node is used in place, not copied).
    root = DictConfig({"train": {"base_lr": 0.7}, "optimizer": node}, flags={"allow_objects": True})
    root.optimizer.lr = "${train.base_lr}"
    opt = build_optimizer(root.optimizer, model)
    assert {g["lr"] for g in opt.param_groups} == {0.7} and "model" not in root.optimizer.params


def test_freeze_parameters():
    model = Net()
    n_train, n_frozen = freeze_parameters(model, [r"head\.", r"backbone\.1\."])
    assert (n_train, n_frozen) == (4, 7)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "backbone.1.weight",
        "backbone.1.bias",
        "head.weight",
        "head.bias",
    ]
    with pytest.raises(ValueError, match="matches no parameter"):
        freeze_parameters(Net(), ["nothing_matches"])


def test_warmup_multistep_values():
    sched = instantiate(multistep_with_warmup(max_iter=100, steps=(60, 80), warmup_iters=10, warmup_factor=0.001))
    values = {i: sched(i / 100) for i in (0, 5, 9, 10, 59, 60, 79, 80, 99)}
    assert values[0] == pytest.approx(0.001)
    assert values[5] == pytest.approx(0.001 + (1 - 0.001) * 0.5)
    assert values[9] == pytest.approx(0.001 + (1 - 0.001) * 0.9)
    assert values[10] == values[59] == 1.0
    assert values[60] == pytest.approx(0.1) and values[79] == pytest.approx(0.1)
    assert values[80] == pytest.approx(0.01) and values[99] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="must be increasing and below max_iter"):
        multistep_with_warmup(max_iter=100, steps=(80, 60))


def test_cosine_with_warmup_values():
    sched = instantiate(cosine_with_warmup(max_iter=100, warmup_iters=10, warmup_factor=0.1))
    cos = lambda t: 0.5 * (1 + math.cos(math.pi * t))  # noqa: E731
    assert sched(0.0) == pytest.approx(0.1)
    assert sched(0.05) == pytest.approx(0.1 + (cos(0.1) - 0.1) * 0.5)  # linear toward the cosine at 10
    assert sched(0.5) == pytest.approx(cos(0.5)) == pytest.approx(0.5)
    assert sched(0.75) == pytest.approx(cos(0.75))
    assert sched(0.999) == pytest.approx(cos(0.999))


def test_lr_multiplier_per_iteration_and_state():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p], "lr": 1.0}, {"params": [nn.Parameter(torch.zeros(1))], "lr": 0.5}])
    mult = WarmupParamScheduler(MultiStepParamScheduler([1.0, 0.1], milestones=[6], num_updates=10), 0.5, 0.2)
    sched = LRMultiplier(opt, mult, max_iter=10)
    lrs = []
    for _ in range(10):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert [round(x[0], 6) for x in lrs] == [0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.1]
    assert [round(x[1], 6) for x in lrs] == [0.25, 0.375, 0.5, 0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.05]
    state = sched.state_dict()
    assert set(state) == {"base_lrs", "last_epoch"} and state["last_epoch"] == 10
