"""Exact resume and seeding on the real shapes Faster R-CNN (small images, a few iterations).

A run stopped after a checkpoint and resumed ends bit-identical to the uninterrupted one (every tensor of the
final checkpoints equal: weights, optimizer state, random generators), with 0 and with 2 loader workers.
``train.seed`` repeats a run exactly and another seed changes it (weights, data, sampling)."""

from __future__ import annotations

import shutil

import pytest
import torch
from _shapes import differing_tensors, load_checkpoint, shapes_frcnn_cfg
from _toy import toy_cfg

from net_detr2.engine import DefaultTrainer, HookBase


class StopAfter(HookBase):
    def __init__(self, it: int):
        self.it = it

    def after_step(self):
        if self.trainer.iter == self.it:
            raise KeyboardInterrupt  # like Ctrl-C or a killed job, after the checkpoint of this iteration


def train(cfg, resume: bool = False, stop_after: int | None = None) -> DefaultTrainer:
    trainer = DefaultTrainer(cfg)
    if stop_after is not None:
        trainer.register_hooks([StopAfter(stop_after)])
    trainer.resume_or_load(resume=resume)
    try:
        trainer.train()
    except KeyboardInterrupt:
        assert stop_after is not None
    return trainer


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_is_bit_identical(tmp_path, num_workers):
    workers = f"dataloader.train.num_workers={num_workers}"
    full = tmp_path / "full"
    train(shapes_frcnn_cfg(full, workers, "train.seed=0"))
    part = tmp_path / "part"
    train(shapes_frcnn_cfg(part, workers, "train.seed=0"), stop_after=2)  # during iteration 2 of 0..3
    assert (part / "last_checkpoint").read_text() == "model_0000001.pth"
    # a resumed process starts from another random state: that the checkpoint restores it is what is tested
    torch.manual_seed(12345)
    train(shapes_frcnn_cfg(part, workers, "train.seed=0"), resume=True)
    final, resumed = load_checkpoint(full / "model_final.pth"), load_checkpoint(part / "model_final.pth")
    assert len(final["model"]) > 100 and "rng" in final["trainer"] and "optimizer" in final
    assert differing_tensors(final, resumed) == []


def test_train_seed_repeats_and_changes_a_run(tmp_path):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        trainer = DefaultTrainer(shapes_frcnn_cfg(tmp_path / name, f"train.seed={seed}", max_iter=2))
        initial = {k: v.clone() for k, v in trainer.checkpointer.model.state_dict().items()}
        data_seed = trainer.data_loader.state_dict()["seed"]
        trainer.resume_or_load(resume=False)
        trainer.train()
        runs[name] = (initial, data_seed, load_checkpoint(tmp_path / name / "model_final.pth"))
    (init_a, data_a, final_a), (init_b, data_b, final_b), (init_c, data_c, final_c) = runs.values()
    # the same seed: the same initial weights, data order and augmentation, and bit-identical training
    assert data_a == data_b and differing_tensors(init_a, init_b) == []
    assert differing_tensors(final_a, final_b) == []
    # another seed: other initial weights, another data stream (order and augmentation follow its seed)
    assert data_a != data_c
    randomly_initialised = {f"/{k}" for k, v in init_a.items() if v.ndim >= 2}  # conv / linear weights
    assert len(randomly_initialised) > 30 and randomly_initialised <= set(differing_tensors(init_a, init_c))
    assert differing_tensors(final_a["model"], final_c["model"])


@pytest.mark.parametrize("iteration", [10**12, 6, -3, 2.5])
def test_resume_refuses_an_absurd_iteration(tmp_path, iteration):
    out = tmp_path / "out"
    train(toy_cfg(out, max_iter=6), stop_after=2)
    path = out / "model_0000002.pth"
    checkpoint = load_checkpoint(path)
    checkpoint["iteration"] = iteration
    torch.save(checkpoint, path)
    with pytest.raises(Exception) as e:  # the trainer's check, or the checkpointer's for what no file may hold
        DefaultTrainer(toy_cfg(out, max_iter=6)).resume_or_load(resume=True)
    assert str(path) in str(e.value) and "iteration" in str(e.value), str(e.value)
    shutil.rmtree(out)
