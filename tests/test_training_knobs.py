"""Training knobs of ``cfg.train``: gradient accumulation, the moving average of the weights (EMA) and early
stopping; and that with their defaults (off) a step is the plain optimisation step. (Exact resume with the
knobs on: ``tests/reliability/test_resume.py``; with two processes: ``tests/reliability/test_distributed.py``.)"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch
from test_engine import REPO, ToyAccuracy, ToyLoader, ToyModel, make_cfg, read_metrics, toy_loader, toy_test_loader
from torch import nn

from net_detr2.checkpoint import DetectionCheckpointer
from net_detr2.config import LazyCall as L
from net_detr2.engine import DefaultTrainer, SimpleTrainer, check_train_config
from net_detr2.solver import ModelEMA


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _toy_model(seed: int = 0) -> ToyModel:
    torch.manual_seed(seed)
    return ToyModel()


# ------------------------------------------------------------------------------------------------
# Defaults: the plain step
# ------------------------------------------------------------------------------------------------
def test_default_step_is_the_plain_optimisation_step():
    """grad_accum_steps=1 and no EMA: bit for bit ``zero_grad, sum(losses).backward(), clip, step``."""
    model, reference = _toy_model(), _toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = SimpleTrainer(model, toy_loader(), optimizer, clip_grad={"max_norm": 0.5})
    trainer.train(0, 4)
    ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    batches = toy_loader()
    for _ in range(4):
        losses = reference(next(batches))
        ref_optimizer.zero_grad()
        sum(losses.values()).backward()
        torch.nn.utils.clip_grad_norm_(list(reference.parameters()), max_norm=0.5)
        ref_optimizer.step()
    got, expected = _params(model), _params(reference)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert not torch.equal(got["cls_head.weight"], _params(_toy_model())["cls_head.weight"])  # it trained


def test_default_config_writes_no_knob_state(tmp_path):
    cfg = make_cfg(tmp_path, max_iter=3)
    assert cfg.train.grad_accum_steps == 1 and not cfg.train.ema.enabled and not cfg.train.early_stopping.enabled
    assert not cfg.train.tta.enabled
    trainer = DefaultTrainer(cfg)
    assert trainer.ema is None and trainer.grad_accum_steps == 1
    assert not any(type(h).__name__ == "EarlyStopping" for h in trainer._hooks)
    trainer.resume_or_load(resume=False)
    trainer.train()
    checkpoint = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert set(checkpoint) == {"model", "optimizer", "scheduler", "iteration", "trainer"}
    assert trainer.data_loader.next_batch == 3


# ------------------------------------------------------------------------------------------------
# Gradient accumulation
# ------------------------------------------------------------------------------------------------
class PairedLoader(ToyLoader):
    """ToyLoader's batches of 2, two at a time: batch i is ToyLoader's batches 2i and 2i+1 together."""

    def __iter__(self):
        small = iter(ToyLoader(batch_size=2, seed=self.seed))
        while True:
            yield next(small) + next(small)


@pytest.mark.parametrize("scaled", [False, True])
def test_accumulating_two_batches_is_one_step_on_both(scaled):
    """k=2 micro-batches of 2 = one step on the 4 images (no batch-dependent layer: LayerNorm is per sample), with
    momentum, gradient clipping and a gradient scaler (its scale is divided out before clipping and the step)."""
    runs = {}
    for name, loader, k in (("accumulated", ToyLoader(batch_size=2), 2), ("big batch", PairedLoader(), 1)):
        model = _toy_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12) if scaled else None
        trainer = SimpleTrainer(
            model, loader, optimizer, clip_grad={"max_norm": 0.3}, grad_scaler=scaler, grad_accum_steps=k
        )
        trainer.train(0, 3)
        losses = [v for v, _ in trainer.storage.history("loss_cls").values()]
        runs[name] = (_params(model), losses, trainer)
    (acc, acc_losses, acc_trainer), (big, big_losses, _) = runs.values()
    for key in big:
        torch.testing.assert_close(acc[key], big[key], rtol=1e-5, atol=1e-6, msg=key)
    # recorded: the mean over the micro-batches, i.e. the big batch's (mean) loss
    assert acc_losses == pytest.approx(big_losses, rel=1e-5)
    assert acc_trainer.data_loader.next_batch == 6  # 3 steps x 2 micro-batches
    assert not torch.equal(acc["cls_head.weight"], _params(_toy_model())["cls_head.weight"])


def test_accumulation_counts_iterations_in_optimizer_steps(tmp_path):
    trainer = DefaultTrainer(make_cfg(tmp_path, max_iter=6, grad_accum_steps=3))
    steps = []
    trainer.optimizer.register_step_post_hook(lambda *_: steps.append(trainer.iter))
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert steps == [0, 1, 2, 3, 4, 5] and trainer.data_loader.next_batch == 18
    lrs = [round(m["lr"], 6) for m in read_metrics(tmp_path)]
    assert lrs == [0.01, 0.055, 0.1, 0.01, 0.01, 0.01]  # 6 steps: warm-up over 2, x0.1 from max_iter // 2
    assert torch.load(tmp_path / "model_final.pth", weights_only=True)["iteration"] == 5


def test_accumulation_uses_no_sync_on_all_but_the_last_micro_batch():
    """With DistributedDataParallel (a one-process gloo group here) the first k-1 micro-batches run under no_sync,
    so the gradients are all-reduced once per step; the update equals the unwrapped model's."""
    import torch.distributed as dist

    from net_detr2.utils import comm

    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        ddp = nn.parallel.DistributedDataParallel(_toy_model())
        entered = []
        original = ddp.no_sync

        def no_sync():
            entered.append(comm.get_rank())
            return original()

        ddp.no_sync = no_sync
        trainer = SimpleTrainer(
            ddp, toy_loader(), torch.optim.SGD(ddp.parameters(), lr=0.1), grad_accum_steps=3, sync_buffers=False
        )
        trainer.train(0, 2)
        plain = _toy_model()
        SimpleTrainer(plain, toy_loader(), torch.optim.SGD(plain.parameters(), lr=0.1), grad_accum_steps=3).train(0, 2)
    finally:
        dist.destroy_process_group()
    assert entered == [0, 0, 0, 0]  # 2 of the 3 micro-batches of each of the 2 steps
    got, expected = _params(ddp.module), _params(plain)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-7, msg=key)


def test_bad_knob_values_name_the_key(tmp_path):
    for overrides, message in (
        (dict(grad_accum_steps=0), r"train\.grad_accum_steps must be a positive integer, got 0"),
        (dict(grad_accum_steps=1.5), r"train\.grad_accum_steps must be int, got 1\.5"),
        (dict(ema=dict(enabled=True, decay=1.0, warmup_iters=0)), r"train\.ema\.decay must be a number in \(0, 1\)"),
        (dict(ema=dict(enabled="yes", decay=0.9, warmup_iters=0)), r"train\.ema\.enabled must be True or False"),
        (
            dict(early_stopping=dict(enabled=True, metric="bbox/AP", mode="up", patience=2, min_delta=0.0)),
            r"train\.early_stopping\.mode must be 'max' or 'min', got 'up'",
        ),
        (
            dict(early_stopping=dict(enabled=True, metric="bbox/AP", mode="max", patience=0, min_delta=0.0)),
            r"train\.early_stopping\.patience \(evaluations\) must be an integer >= 1, got 0",
        ),
        (
            dict(tta=dict(enabled=True, scales=[1.0, -2], flip=True, nms_thresh=None, max_detections=None)),
            r"train\.tta\.scales must be a non-empty list of positive resize factors, got \[1\.0, -2\]",
        ),
        (
            dict(tta=dict(enabled=False, scales=[1.0], flip=True, nms_thresh=1.5, max_detections=None)),
            r"train\.tta\.nms_thresh must be None \(the model's own\) or in \(0, 1\], got 1\.5",
        ),
    ):
        with pytest.raises(ValueError, match=message):
            check_train_config(make_cfg(tmp_path, **overrides).train)
    cfg = make_cfg(tmp_path)
    del cfg.train.ema
    with pytest.raises(ValueError, match=r"cfg\.train lacks \['ema'\]: start from configs/common/train\.py"):
        check_train_config(cfg.train)


# ------------------------------------------------------------------------------------------------
# EMA
# ------------------------------------------------------------------------------------------------
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.0, 10.0]))
        self.frozen = nn.Parameter(torch.tensor([0.1, 0.7]), requires_grad=False)
        self.register_buffer("count", torch.tensor(0))


def test_ema_follows_the_warmed_up_decay():
    model = Tiny()
    ema = ModelEMA(model, decay=0.9, warmup_iters=2)
    expected = model.w.detach().clone().double()
    for n, value in enumerate([1.0, 2.0, 4.0], start=1):
        with torch.no_grad():
            model.w.fill_(value)
            model.count += 1
        ema.update(model)
        d = 0.9 * (1 - math.exp(-n / 2))
        assert ema.decay_at(n) == pytest.approx(d)
        expected = d * expected + (1 - d) * value
        torch.testing.assert_close(ema.state_dict()["w"].double(), expected, rtol=1e-6, atol=1e-6)
    assert ema.num_updates == 3 and int(ema.state_dict()["count"]) == 3  # integers are copied
    assert torch.equal(ema.state_dict()["frozen"], model.frozen)  # unchanged weights stay exactly as they are
    assert ModelEMA(model, decay=0.9, warmup_iters=0).decay_at(1) == 0.9
    counter = nn.Module()  # nothing to average
    counter.register_buffer("n", torch.tensor(0))
    only_integers = ModelEMA(counter, decay=0.9)
    counter.n += 2
    only_integers.update(counter)
    assert int(only_integers.state_dict()["n"]) == 2
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\), got 1"):
        ModelEMA(model, decay=1, warmup_iters=0)


def test_ema_is_fp32_under_bf16_autocast_and_swaps_back_exactly(monkeypatch):
    from net_detr2.utils import amp

    monkeypatch.setattr(amp, "cpu_supports_bf16", lambda: True)
    model = _toy_model()
    ema = ModelEMA(model, decay=0.5, warmup_iters=0)
    trainer = SimpleTrainer(
        model, toy_loader(), torch.optim.SGD(model.parameters(), lr=0.5), amp_dtype=torch.bfloat16, ema=ema
    )
    trainer.train(0, 3)
    assert ema.num_updates == 3 and all(t.dtype == torch.float32 for t in ema.state_dict().values())
    raw = _params(model)
    assert any(not torch.equal(raw[k], ema.state_dict()[k]) for k in raw)
    with ema.applied_to(model):
        inside = _params(model)
    assert all(torch.equal(inside[k], ema.state_dict()[k]) for k in raw)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in raw.items())


def _with_evaluator(cfg):
    cfg.dataloader.test = L(toy_test_loader)()
    cfg.dataloader.evaluator = L(ToyAccuracy)()
    return cfg


def test_ema_is_evaluated_checkpointed_and_loaded(tmp_path, monkeypatch):
    ema_cfg = dict(enabled=True, decay=0.8, warmup_iters=0)
    cfg = _with_evaluator(make_cfg(tmp_path / "run", max_iter=4, eval_period=2, ema=ema_cfg))
    trainer = DefaultTrainer(cfg)
    evaluated = []
    test = DefaultTrainer.test

    def recording_test(cfg, model, with_tta=True):
        evaluated.append((_params(model), {k: v.clone() for k, v in trainer.ema.state_dict().items()}, with_tta))
        return test(cfg, model, with_tta)

    monkeypatch.setattr(DefaultTrainer, "test", staticmethod(recording_test))
    trainer.resume_or_load(resume=False)
    trainer.train()
    raw = _params(trainer.model)
    assert [w for *_, w in evaluated] == [False, True]  # after iteration 1 (period 2), then after training
    for weights, averaged, _ in evaluated:  # the model held the averaged weights while it was evaluated
        assert all(torch.equal(weights[k], averaged[k]) for k in weights)
    assert any(not torch.equal(raw[k], evaluated[-1][0][k]) for k in raw)  # and got its own back
    final = torch.load(tmp_path / "run" / "model_final.pth", weights_only=True)
    assert final["ema_updates"] == 4
    assert all(torch.equal(final["model"][k], evaluated[-1][0][k]) for k in raw)
    assert all(torch.equal(final["raw_model"][k], raw[k]) for k in raw)
    # any other reader of the file gets the averaged weights (init_checkpoint, --eval-only, demo.py)
    fresh = ToyModel()
    DetectionCheckpointer(fresh).load(str(tmp_path / "run" / "model_final.pth"))
    assert all(torch.equal(fresh.state_dict()[k], final["model"][k]) for k in raw)
    # a run started from it (EMA on) starts its average from those weights too
    tuned = DefaultTrainer(
        make_cfg(tmp_path / "tuned", init_checkpoint=str(tmp_path / "run" / "model_final.pth"), ema=ema_cfg)
    )
    tuned.resume_or_load(resume=False)
    assert tuned.ema.num_updates == 0
    assert all(torch.equal(tuned.ema.state_dict()[k], final["model"][k]) for k in raw)


def test_resuming_without_ema_goes_on_from_the_raw_weights(tmp_path, caplog):
    cfg = make_cfg(tmp_path, max_iter=4, ema=dict(enabled=True, decay=0.8, warmup_iters=0))
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.max_iter = 2  # stop after the checkpoint of iteration 1
    trainer.train()
    saved = torch.load(tmp_path / "model_0000001.pth", weights_only=True)
    resumed = DefaultTrainer(make_cfg(tmp_path, max_iter=4))
    with caplog.at_level(logging.WARNING):
        resumed.resume_or_load(resume=True)
    assert "holds an average of the weights (train.ema) that this run does not keep" in caplog.text
    assert all(torch.equal(resumed.model.state_dict()[k], v) for k, v in saved["raw_model"].items())


def test_eval_only_resume_evaluates_the_average(tmp_path, monkeypatch):
    """``train_net.py --eval-only --resume`` of a run with train.ema evaluates the average of its last checkpoint,
    as ``--eval-only train.init_checkpoint=<that file>`` does, not the trained weights kept for resuming."""
    import shutil

    from test_engine import CONFIG_FILE, _load_train_net

    from net_detr2.engine import default_argument_parser, evaluate_checkpoint

    (tmp_path / "configs").mkdir()
    shutil.copytree(REPO / "configs" / "common", tmp_path / "configs" / "common")
    cfg_file = tmp_path / "configs" / "exp" / "toy.py"
    cfg_file.parent.mkdir()
    cfg_file.write_text(CONFIG_FILE)
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    train_net = _load_train_net()
    run = tmp_path / "run"
    ema = ["train.ema.enabled=True", "train.ema.decay=0.8", "train.ema.warmup_iters=0"]
    parse = default_argument_parser().parse_args
    train_net.main(parse(["--config-file", str(cfg_file), f"train.output_dir={run}", *ema]))
    final = torch.load(run / "model_final.pth", weights_only=True)
    assert any(not torch.equal(final["model"][k], final["raw_model"][k]) for k in final["model"])
    evaluated = []
    test = DefaultTrainer.test

    def recording_test(cfg, model, with_tta=True):
        evaluated.append(_params(model))
        return test(cfg, model, with_tta)

    monkeypatch.setattr(DefaultTrainer, "test", staticmethod(recording_test))
    results = train_net.main(
        parse(["--config-file", str(cfg_file), "--eval-only", "--resume", f"train.output_dir={run}"])
    )
    assert set(results["toy"]) == {"acc", "n"}
    assert all(torch.equal(evaluated[-1][k], final["model"][k]) for k in final["model"])
    # the helper behind it says which file and iteration it evaluated
    cfg = make_cfg(run, max_iter=6, ema=dict(enabled=True, decay=0.8, warmup_iters=0))
    cfg = _with_evaluator(cfg)
    got = evaluate_checkpoint(cfg, resume=True)
    assert got.checkpoint == str(run / "model_final.pth") and got.iteration == 5
    assert all(torch.equal(got.model.state_dict()[k], final["model"][k]) for k in final["model"])
    got = evaluate_checkpoint(cfg, str(run / "model_final.pth"))
    assert got.iteration == 5 and all(torch.equal(evaluated[-1][k], final["model"][k]) for k in final["model"])


# ------------------------------------------------------------------------------------------------
# Early stopping
# ------------------------------------------------------------------------------------------------
def scripted_metric(values: dict[int, float]):
    """A ``DefaultTrainer.test`` whose ``toy/acc`` at each evaluated iteration is ``values[iteration]`` (the
    final evaluation, after training: the last value), so that a resumed run sees the same numbers."""
    calls = []

    def test(cfg, model, with_tta=True):
        from net_detr2.utils.events import get_event_storage

        it = get_event_storage().iter
        calls.append((it, with_tta))
        return {"toy": {"acc": values.get(it, -1.0)}}

    return test, calls


def stopping_cfg(out, **early_stopping):
    stop = dict(enabled=True, metric="toy/acc", mode="max", patience=2, min_delta=0.0)
    stop.update(early_stopping)
    cfg = make_cfg(out, max_iter=20, eval_period=2, early_stopping=stop, checkpointer=dict(period=4, max_to_keep=None))
    return _with_evaluator(cfg)


def test_early_stopping_ends_training_cleanly(tmp_path, monkeypatch, caplog):
    test, calls = scripted_metric({1: 50.0, 3: 60.0, 5: 60.0, 7: 55.0, 9: 90.0})
    monkeypatch.setattr(DefaultTrainer, "test", staticmethod(test))
    trainer = DefaultTrainer(stopping_cfg(tmp_path))
    trainer.resume_or_load(resume=False)
    with caplog.at_level(logging.INFO):
        trainer.train()
    # 60 at iteration 3, then no improvement at 5 (equal) and 7: patience 2 used up after iteration 7
    assert trainer.iter == 8 and trainer.finished
    # the evaluation after iteration 7 is of the final weights: it is the final evaluation, not run again
    assert calls == [(1, False), (3, False), (5, False), (7, False)]
    stop_line = "Training stops after iteration 7: early stopping: toy/acc has not improved on its best, 60.00000 at "
    assert stop_line + "iteration 3, for 2 evaluations (train.early_stopping.patience=2)" in caplog.text
    final = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert final["iteration"] == 7 and (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    assert final["trainer"]["hooks"]["EarlyStopping"] == {"best": 60.0, "best_iter": 3, "evals_without_improvement": 2}
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == [
        "model_0000003.pth",
        "model_0000007.pth",
        "model_final.pth",
    ]
    assert [(m["iteration"], m["toy/acc"]) for m in read_metrics(tmp_path) if "toy/acc" in m] == [
        (1, 50.0),
        (3, 60.0),
        (5, 60.0),
        (7, 55.0),
        (8, 55.0),  # the final results, recorded after training as always
    ]
    assert (tmp_path / "curves.png").exists()
    # the record of the finished run: the final evaluation's iteration (8 iterations run, not max_iter=20)
    record = json.loads((tmp_path / "final_results.json").read_text())
    assert record["iteration"] == 8 and record["stopped_early"] is True and record["results"] == {"toy": {"acc": 55.0}}
    # resuming the ended run is refused, unless the patience is raised
    with pytest.raises(ValueError, match=r"Cannot resume: this run ended by early stopping: .* raise train\.early_"):
        DefaultTrainer(stopping_cfg(tmp_path)).resume_or_load(resume=True)
    more = DefaultTrainer(stopping_cfg(tmp_path, patience=3))
    more.resume_or_load(resume=True)
    assert more.start_iter == 8


def test_after_early_stopping_only_the_test_time_augmentation_runs(tmp_path, monkeypatch):
    """train.tta: the final evaluation after an early stop reuses the plain results of the same weights and adds
    the test-time augmentation's; a training that ran to max_iter evaluates its final weights as usual."""
    test, calls = scripted_metric({1: 50.0, 3: 40.0, 5: 30.0})
    monkeypatch.setattr(DefaultTrainer, "test", staticmethod(test))
    tta_calls = []

    def test_tta(cfg, model):
        from net_detr2.utils.events import get_event_storage

        tta_calls.append(get_event_storage().iter)
        return {"toy_TTA": {"acc": 70.0}}

    monkeypatch.setattr(DefaultTrainer, "test_tta", staticmethod(test_tta))
    cfg = stopping_cfg(tmp_path / "stopped")
    cfg.train.tta.enabled = True
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert trainer.iter == 6 and calls == [(1, False), (3, False), (5, False)] and tta_calls == [6]
    assert trainer.last_eval_results == {"toy": {"acc": 30.0}, "toy_TTA": {"acc": 70.0}}
    record = json.loads((tmp_path / "stopped" / "final_results.json").read_text())
    assert record["results"] == trainer.last_eval_results and record["stopped_early"] is True
    final = [m for m in read_metrics(tmp_path / "stopped") if m["iteration"] == 6 and "toy/acc" in m]
    assert final[0]["toy/acc"] == 30.0 and final[0]["toy_TTA/acc"] == 70.0
    # no early stop: the final weights are new, evaluated with TTA by test itself
    calls.clear()
    cfg = stopping_cfg(tmp_path / "full", patience=10)
    cfg.train.max_iter = 6
    cfg.train.tta.enabled = True
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert calls == [(1, False), (3, False), (6, True)] and tta_calls == [6]


def test_early_stopping_min_mode_and_min_delta(tmp_path, monkeypatch):
    # improvements must exceed 0.5: 9.7 and 9.6 are not improvements on 10.0, 9.0 is
    test, calls = scripted_metric({1: 10.0, 3: 9.7, 5: 9.0, 7: 8.8, 9: 8.6, 11: 1.0})
    monkeypatch.setattr(DefaultTrainer, "test", staticmethod(test))
    trainer = DefaultTrainer(stopping_cfg(tmp_path, mode="min", min_delta=0.5))
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert trainer.iter == 10 and [it for it, _ in calls] == [1, 3, 5, 7, 9]  # 9: also the final evaluation


def test_early_stopping_needs_its_metric_and_evaluations(tmp_path, monkeypatch):
    test, _ = scripted_metric({1: 1.0})
    monkeypatch.setattr(DefaultTrainer, "test", staticmethod(test))
    cfg = stopping_cfg(tmp_path / "a")
    cfg.train.early_stopping.metric = "bbox/AP"
    trainer = DefaultTrainer(cfg)
    trainer.resume_or_load(resume=False)
    with pytest.raises(
        ValueError, match=r"metric 'bbox/AP' is not among the results of the evaluation at iteration 1 "
    ):
        trainer.train()
    cfg = stopping_cfg(tmp_path / "b")
    cfg.train.eval_period = 0
    with pytest.raises(ValueError, match=r"train\.early_stopping\.enabled needs periodic evaluations"):
        DefaultTrainer(cfg)
