"""A toy detector-shaped model, a stateful toy loader and a toy evaluator for fast engine tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn import functional as F

from net_detr2.config import LazyCall as L
from net_detr2.config import LazyConfig
from net_detr2.solver import multistep_with_warmup

REPO = Path(__file__).resolve().parents[2]


class ToyNet(nn.Module):
    """A linear classifier with a BatchNorm (its running statistics are buffers that training changes).

    ``nan_at_call``: the loss of that training call (1-based) is NaN (a diverging run)."""

    def __init__(self, nan_at_call: int = -1):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.fc2 = nn.Linear(8, 3)
        self.nan_at_call = nan_at_call
        self.calls = 0

    def forward(self, batch):
        x = torch.stack([d["x"] for d in batch])
        logits = self.fc2(torch.relu(self.bn(self.fc1(x))))
        if not self.training:
            return [{"label": int(v)} for v in logits.argmax(1)]
        self.calls += 1
        loss = F.cross_entropy(logits, torch.tensor([d["y"] for d in batch]))
        if self.calls == self.nan_at_call:
            loss = loss * float("nan")
        return {"loss_cls": loss}


class ToyData:
    """Infinite batches of 4; batch ``i`` depends on (seed, rank, i). Saves/restores its place like
    `TrainingDataLoader`."""

    def __init__(self, seed: int = 0, rank_dependent: bool = False):
        from net_detr2.utils import comm

        self.seed, self.next_batch = seed, 0
        self.rank = comm.get_rank() if rank_dependent else 0

    def __iter__(self):
        while True:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.rank * 10_007 + self.next_batch)
            self.next_batch += 1
            yield [{"x": torch.randn(4, generator=g), "y": int(torch.randint(3, (1,), generator=g))} for _ in range(4)]

    def state_dict(self):
        return {"seed": self.seed, "next_batch": self.next_batch}

    def load_state_dict(self, state):
        self.seed, self.next_batch = state["seed"], state["next_batch"]


def toy_test_data():
    return [b for b, _ in zip(ToyData(seed=99), range(3))]


class ToyEvaluator:
    """Accuracy; every evaluation also writes ``output_dir/toy_results.json`` (like coco_instances_results.json)."""

    def __init__(self, output_dir: str | None = None):
        self.output_dir = output_dir

    def reset(self):
        self.correct = self.total = 0

    def process(self, inputs, outputs):
        for i, o in zip(inputs, outputs):
            self.correct += int(o["label"] == i["y"])
            self.total += 1

    def evaluate(self):
        result = {"toy": {"acc": 100.0 * self.correct / self.total}}
        if self.output_dir:
            with open(os.path.join(self.output_dir, "toy_results.json"), "w") as f:
                json.dump(result, f)
        return result


def toy_cfg(output_dir, max_iter: int = 6, evaluate: bool = False, **train) -> DictConfig:
    """A full config (``configs/common/train.py`` for ``train``) around `ToyNet`."""
    cfg = DictConfig({}, flags={"allow_objects": True})
    cfg.model = L(ToyNet)()
    cfg.dataloader = {"train": L(ToyData)(seed=0)}
    if evaluate:
        cfg.dataloader.test = L(toy_test_data)()
        cfg.dataloader.evaluator = L(ToyEvaluator)(output_dir="${train.output_dir}")
    cfg.optimizer = LazyConfig.load(str(REPO / "configs/common/optim.py"), "SGD")
    cfg.optimizer.lr = 0.1
    cfg.lr_multiplier = multistep_with_warmup(max_iter, steps=(max_iter - 1,), warmup_iters=1)
    cfg.train = LazyConfig.load(str(REPO / "configs/common/train.py"), "train")
    cfg.train.update(
        dict(output_dir=str(output_dir), max_iter=max_iter, device="cpu", seed=3, log_period=1, tensorboard=False)
    )
    cfg.train.checkpointer.period = 1
    cfg.train.update(train)
    return cfg


def md5s(folder) -> dict[str, str]:
    """``{file name: md5}`` of every file in ``folder``."""
    import hashlib

    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir()) if p.is_file()}
