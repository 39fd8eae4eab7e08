"""A diverging run stops with FloatingPointError naming the iteration and the losses; last_checkpoint keeps
naming a finite checkpoint and nothing runs after it (no final evaluation, curves or predictions)."""

from __future__ import annotations

import pytest
import torch
from _toy import ToyNet, md5s, toy_cfg

from net_detr2.config import LazyCall as L
from net_detr2.engine import DefaultTrainer, HookBase


class Snapshot(HookBase):
    """The folder's files (md5) after iteration ``it``."""

    def __init__(self, it: int):
        self.it, self.files = it, None

    def after_step(self):
        if self.trainer.iter == self.it:
            self.files = md5s(self.trainer.cfg.train.output_dir)


def test_nan_loss_at_the_last_iteration_stops_without_after_train_side_effects(tmp_path):
    out = tmp_path / "out"
    cfg = toy_cfg(out, max_iter=6, evaluate=True, eval_period=2, plot_curves=True, num_vis_images=2)
    cfg.model = L(ToyNet)(nan_at_call=6)  # the loss of iteration 5, the last one, is NaN
    trainer = DefaultTrainer(cfg)
    snapshot = Snapshot(4)
    trainer.register_hooks([snapshot])
    trainer.resume_or_load(resume=False)
    with pytest.raises(FloatingPointError, match=r"iteration=5!\nloss_dict = \{'loss_cls': nan\}"):
        trainer.train()
    assert not trainer.finished
    files = md5s(out)
    # the periodic evaluation after iteration 3 wrote toy_results.json; no final evaluation rewrote it
    assert files["toy_results.json"] == snapshot.files["toy_results.json"]
    assert (out / "last_checkpoint").read_text() == "model_0000004.pth"
    assert "model_0000005.pth" not in files and "model_final.pth" not in files
    assert "curves.png" not in files and not (out / "predictions").exists()
    saved = torch.load(out / "model_0000004.pth", weights_only=True)["model"]
    assert all(torch.isfinite(v).all() for v in saved.values() if v.is_floating_point())


class InfGradient(HookBase):
    """At iteration ``it`` the step sends a weight to -inf while the loss (computed before it) is finite."""

    def __init__(self, it: int):
        self.it = it

    def after_backward(self):
        if self.trainer.iter == self.it:
            self.trainer.model.fc2.weight.grad[0, 0] = float("inf")


def test_non_finite_weights_with_finite_losses_stop_at_the_checkpoint(tmp_path):
    """The checkpointer refuses to save non-finite weights; the trainer turns that into a clean stop."""
    out = tmp_path / "out"
    trainer = DefaultTrainer(toy_cfg(out, max_iter=6, evaluate=True, eval_period=0, plot_curves=True))
    trainer.register_hooks([InfGradient(2)])
    trainer.resume_or_load(resume=False)
    with pytest.raises(FloatingPointError) as e:
        trainer.train()
    assert "after iteration 2 the model holds non-finite values, so model_0000002.pth was not written" in str(e.value)
    # the checkpointer names the tensor; the trainer the iteration
    assert "fc2.weight (1 of 24 values)" in str(e.value), str(e.value)
    assert "last_checkpoint still names the last finite checkpoint" in str(e.value)
    assert (out / "last_checkpoint").read_text() == "model_0000001.pth"
    assert not (out / "toy_results.json").exists() and not (out / "curves.png").exists()  # no final evaluation
