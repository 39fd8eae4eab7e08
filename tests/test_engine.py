"""Engine: event storage and writers, the training loop, hooks and DefaultTrainer
(determinism, exact resume, non-finite losses, freezing, plotting)."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig
from PIL import Image
from torch import nn
from torch.nn import functional as F

from net_detr2.config import LazyCall as L
from net_detr2.config import LazyConfig
from net_detr2.engine import (
    AMPTrainer,
    DefaultTrainer,
    EvalHook,
    HookBase,
    SimpleTrainer,
    default_argument_parser,
    hooks,
)
from net_detr2.solver import multistep_with_warmup
from net_detr2.utils.events import CommonMetricPrinter, EventStorage, JSONWriter, get_event_storage

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------
# Toy model and data (no dependency on the detection parts)
# ------------------------------------------------------------------------------------------------
class ToyModel(nn.Module):
    """Linear classifier + box regressor over a 6-value "image"; detectron2-style I/O."""

    def __init__(self, in_dim: int = 6, num_classes: int = 3, nan_at_call: int = -1):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(in_dim, 8), nn.LayerNorm(8), nn.ReLU())
        self.cls_head = nn.Linear(8, num_classes)
        self.box_head = nn.Linear(8, 4)
        self.nan_at_call = nan_at_call
        self.calls = 0

    @property
    def device(self):
        return self.cls_head.weight.device

    def forward(self, batched_inputs):
        x = torch.stack([d["image"] for d in batched_inputs]).float().to(self.device)
        feats = self.backbone(x)
        logits, boxes = self.cls_head(feats), self.box_head(feats)
        if self.training:
            self.calls += 1
            labels = torch.tensor([d["label"] for d in batched_inputs], device=self.device)
            targets = torch.stack([d["box"] for d in batched_inputs]).to(self.device)
            loss_cls = F.cross_entropy(logits, labels)
            if self.calls == self.nan_at_call:
                loss_cls = loss_cls * float("nan")
            return {"loss_cls": loss_cls, "loss_box_reg": F.smooth_l1_loss(boxes, targets)}
        scores, classes = logits.softmax(-1).max(-1)
        return [
            {"instances": {"pred_boxes": b[None], "scores": s[None], "pred_classes": c[None]}}
            for b, s, c in zip(boxes, scores, classes)
        ]


class ToyLoader:
    """Infinite batches; batch ``i`` depends only on (seed, i). Its place in the stream is saved and restored
    like `TrainingDataLoader`'s (``state_dict``: seed and next batch)."""

    def __init__(self, batch_size: int = 2, seed: int = 0, in_dim: int = 6):
        self.batch_size, self.seed, self.in_dim = batch_size, seed, in_dim
        self.next_batch = 0

    def __iter__(self):
        while True:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.next_batch)
            self.next_batch += 1
            yield [
                {
                    "image": torch.randn(self.in_dim, generator=g),
                    "label": int(torch.randint(3, (1,), generator=g)),
                    "box": torch.rand(4, generator=g),
                }
                for _ in range(self.batch_size)
            ]

    def state_dict(self):
        return {"seed": self.seed, "next_batch": self.next_batch}

    def load_state_dict(self, state):
        self.seed, self.next_batch = state["seed"], state["next_batch"]


def toy_loader(batch_size: int = 2, seed: int = 0, in_dim: int = 6):
    return iter(ToyLoader(batch_size, seed, in_dim))


def make_cfg(output_dir, max_iter: int = 6, **train_overrides) -> DictConfig:
    cfg = DictConfig({}, flags={"allow_objects": True})
    cfg.model = L(ToyModel)(in_dim=6)
    cfg.dataloader = {"train": L(ToyLoader)(batch_size=2, seed=0)}
    cfg.optimizer = LazyConfig.load(str(REPO / "configs/common/optim.py"), "SGD")
    cfg.optimizer.lr = 0.1
    cfg.lr_multiplier = multistep_with_warmup(max_iter, steps=(max_iter // 2,), warmup_iters=2, warmup_factor=0.1)
    cfg.train = LazyConfig.load(str(REPO / "configs/common/train.py"), "train")
    cfg.train.update(
        dict(
            output_dir=str(output_dir),
            max_iter=max_iter,
            device="cpu",
            seed=7,
            log_period=1,
            eval_period=0,
            tensorboard=False,
            checkpointer=dict(period=2, max_to_keep=None),
        )
    )
    cfg.train.update(train_overrides)
    return cfg


def read_metrics(output_dir) -> list:
    return [json.loads(x) for x in (Path(output_dir) / "metrics.json").read_text().splitlines()]


def final_state(trainer):
    return {k: v.clone() for k, v in trainer.checkpointer.model.state_dict().items()}


@pytest.fixture
def ncaplog(caplog):
    """caplog that also sees the "net_detr2" logger (setup_logger turns its propagation off)."""
    logger = logging.getLogger("net_detr2")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)


# ------------------------------------------------------------------------------------------------
def test_event_storage_history_and_smoothing():
    with EventStorage(start_iter=5) as storage:
        assert get_event_storage() is storage
        for i, v in enumerate([1.0, 3.0, 2.0, 10.0]):
            storage.iter = 5 + i
            storage.put_scalar("loss", v)
            storage.put_scalars(lr=0.1 * (i + 1), smoothing_hint=False)
        assert storage.history("loss").values() == [(1.0, 5), (3.0, 6), (2.0, 7), (10.0, 8)]
        assert storage.latest()["loss"] == (10.0, 8)
        smoothed = storage.latest_with_smoothing_hint(window_size=3)
        assert smoothed["loss"] == (3.0, 8)  # median of 3, 2, 10
        assert smoothed["lr"][0] == pytest.approx(0.4)  # no smoothing hint: the latest value
        with storage.name_scope("val"):
            storage.put_scalar("x", 1)
        assert "val/x" in storage.histories()
        with pytest.raises(KeyError, match="No history metric available for 'nope'"):
            storage.history("nope")
    with pytest.raises(RuntimeError, match="EventStorage"):
        get_event_storage()


def test_json_writer_and_printer(tmp_path, ncaplog):
    caplog = ncaplog
    path = tmp_path / "metrics.json"
    writer, printer = JSONWriter(str(path), window_size=2), CommonMetricPrinter(max_iter=10, window_size=2)
    with EventStorage() as storage:
        for i in range(3):
            storage.iter = i
            storage.put_scalars(total_loss=float(i), loss_cls=2.0 * i, time=0.5, data_time=0.1)
            storage.put_scalar("lr", 0.01, smoothing_hint=False)
            writer.write()
        printer.write()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [d["iteration"] for d in lines] == [0, 1, 2]
    assert lines[2]["total_loss"] == 1.5  # median of the last 2 values (1, 2)
    assert lines[2]["lr"] == 0.01
    msg = caplog.records[-1].getMessage()
    for part in (
        "eta: 0:00:03",
        "iter: 2",
        "loss_cls: 3",
        "total_loss: 1.5",
        "time: 0.5000",
        "data_time: 0.1000",
        "lr: 0.01",
    ):
        assert part in msg, (part, msg)


def test_simple_trainer_hooks_order_and_clip():
    model = ToyModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []

    class Recorder(HookBase):
        def before_train(self):
            calls.append("before_train")

        def before_step(self):
            calls.append(f"before_step{self.trainer.iter}")

        def after_backward(self):
            grad = torch.cat([p.grad.flatten() for p in model.parameters()])
            calls.append("after_backward")
            self.grad_norm = grad.norm()

        def after_step(self):
            calls.append(f"after_step{self.trainer.iter}")

        def after_train(self):
            calls.append(f"after_train{self.trainer.iter}")

    trainer = SimpleTrainer(model, toy_loader(), opt, clip_grad={"max_norm": 1e-3})
    rec = Recorder()
    trainer.register_hooks([rec, None])
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train(0, 2)
    assert calls == [
        "before_train",
        "before_step0",
        "after_backward",
        "after_step0",
        "before_step1",
        "after_backward",
        "after_step1",
        "after_train2",
    ]
    # With max_norm=1e-3 and lr=0.1 each step moves the weights by at most 1e-4 in L2 norm.
    step = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)]).norm()
    assert rec.grad_norm > 1e-2 and step <= 2 * 1e-4 + 1e-7


def test_nonfinite_loss_raises_with_iteration():
    model = ToyModel(nan_at_call=3)
    trainer = SimpleTrainer(model, toy_loader(), torch.optim.SGD(model.parameters(), lr=0.1))
    before = None

    class Snap(HookBase):
        def after_step(self):
            nonlocal before
            before = [p.detach().clone() for p in model.parameters()]

    trainer.register_hooks([Snap()])
    with pytest.raises(FloatingPointError, match=r"iteration=2!\nloss_dict = \{'loss_cls': nan, 'loss_box_reg': "):
        trainer.train(0, 5)
    # The optimizer never stepped with the NaN loss.
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_bf16_training_step_on_cpu(monkeypatch):
    """CPU bf16 through AMPTrainer (detectron2's interface): linear layers compute in bf16, the loss is fp32, no
    gradient scaler, fp32 master weights, and training reduces the loss."""
    from net_detr2.utils import amp

    monkeypatch.setattr(amp, "cpu_supports_bf16", lambda: True)  # autocast runs bf16 (emulated) on any CPU
    torch.manual_seed(0)
    model = ToyModel()
    batch = next(toy_loader(batch_size=8))
    trainer = AMPTrainer(
        model, itertools.repeat(batch), torch.optim.SGD(model.parameters(), lr=0.5), precision=torch.bfloat16
    )
    assert trainer.amp_dtype is torch.bfloat16 and not trainer.grad_scaler.is_enabled()
    seen = {}
    model.cls_head.register_forward_hook(lambda m, i, o: seen.update(logits=o.dtype))
    model.register_forward_hook(lambda m, i, o: seen.update(loss=o["loss_cls"].dtype))
    trainer.train(0, 30)
    assert seen == {"logits": torch.bfloat16, "loss": torch.float32}
    assert all(p.dtype is torch.float32 for p in model.parameters())
    losses = [v for v, _ in trainer.storage.history("loss_cls").values()]
    assert losses[-1] < 0.5 * losses[0]  # it learns the batch


def test_amp_on_cpu_without_bf16_warns_once_and_runs_fp32(monkeypatch, caplog):
    from net_detr2.utils import amp

    monkeypatch.setattr(amp, "cpu_supports_bf16", lambda: False)
    amp._warn_once.cache_clear()
    model = ToyModel()
    with caplog.at_level(logging.WARNING):
        trainer = AMPTrainer(model, toy_loader(), torch.optim.SGD(model.parameters(), lr=0.1), precision=torch.bfloat16)
        seen = []
        model.cls_head.register_forward_hook(lambda m, i, o: seen.append(o.dtype) and None)
        trainer.train(0, 2)
    assert trainer.amp_dtype is None and seen == [torch.float32, torch.float32]
    assert sum("no native bfloat16" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(ValueError, match="CUDA-only"):  # fp16 autocast on a CPU is refused, not silently fp32
        AMPTrainer(model, toy_loader(), torch.optim.SGD(model.parameters(), lr=0.1), precision=torch.float16)


def test_train_amp_config_reaches_the_step(tmp_path, monkeypatch):
    from net_detr2.utils import amp

    monkeypatch.setattr(amp, "cpu_supports_bf16", lambda: True)
    trainer = DefaultTrainer(make_cfg(tmp_path, max_iter=4, amp=dict(enabled=True, dtype="bfloat16")))
    assert trainer.amp_dtype is torch.bfloat16 and not trainer.grad_scaler.is_enabled()
    with pytest.raises(ValueError, match=r"train\.amp\.dtype.*'half'"):
        DefaultTrainer(make_cfg(tmp_path, max_iter=4, amp=dict(enabled=True, dtype="half")))


def test_default_trainer_is_deterministic(tmp_path):
    losses = []
    for run in ("a", "b"):
        trainer = DefaultTrainer(make_cfg(tmp_path / run))
        trainer.resume_or_load(resume=False)
        trainer.train()
        metrics = read_metrics(tmp_path / run)
        losses.append([(m["iteration"], m["loss_cls"], m["loss_box_reg"], m["lr"]) for m in metrics])
    assert len(losses[0]) == 6 and losses[0] == losses[1]
    # Warm-up from 0.1x over 2 iterations, x0.1 from iteration 3 (= max_iter // 2) on.
    assert [round(x[3], 6) for x in losses[0]] == [0.01, 0.055, 0.1, 0.01, 0.01, 0.01]
    out = tmp_path / "a"
    assert sorted(p.name for p in out.glob("*.pth")) == [
        "model_0000001.pth",
        "model_0000003.pth",
        "model_0000005.pth",
        "model_final.pth",
    ]
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    assert (out / "curves.png").stat().st_size > 1000


class StopAt(HookBase):
    def __init__(self, it):
        self.it = it

    def after_step(self):
        if self.trainer.iter == self.it:
            raise KeyboardInterruptLike(f"stopped at {self.it}")


class KeyboardInterruptLike(RuntimeError):
    pass


def test_resume_matches_uninterrupted_run(tmp_path):
    full = DefaultTrainer(make_cfg(tmp_path / "full", max_iter=8))
    full.resume_or_load(resume=False)
    full.train()
    expected = final_state(full)

    cfg = make_cfg(tmp_path / "resumed", max_iter=8)
    first = DefaultTrainer(cfg)
    first.resume_or_load(resume=True)  # nothing to resume yet: starts at 0
    assert first.start_iter == 0
    first.register_hooks([StopAt(4)])  # after the checkpoint of iteration 3, during iteration 4
    with pytest.raises(KeyboardInterruptLike):
        first.train()
    assert (tmp_path / "resumed" / "last_checkpoint").read_text() == "model_0000003.pth"

    second = DefaultTrainer(make_cfg(tmp_path / "resumed", max_iter=8, checkpointer=dict(period=2, max_to_keep=2)))
    assert second.data_loader.next_batch == 0
    second.resume_or_load(resume=True)
    assert second.start_iter == 4 and second.data_loader.next_batch == 4  # the loader continues where it was
    second.train()
    got = final_state(second)
    # max_to_keep=2 counts the files of the interrupted run as well.
    assert sorted(p.name for p in (tmp_path / "resumed").glob("*.pth")) == [
        "model_0000005.pth",
        "model_0000007.pth",
        "model_final.pth",
    ]
    assert got.keys() == expected.keys()
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=0, atol=0, msg=k)
    # Same LR at every iteration after the resume.
    lr_full = {m["iteration"]: m["lr"] for m in read_metrics(tmp_path / "full")}
    lr_res = {m["iteration"]: m["lr"] for m in read_metrics(tmp_path / "resumed")}
    assert all(lr_res[i] == lr_full[i] for i in range(4, 8))


def test_init_checkpoint_loads_weights_only(tmp_path):
    src = DefaultTrainer(make_cfg(tmp_path / "src", max_iter=4))
    src.resume_or_load(resume=False)
    src.train()
    cfg = make_cfg(tmp_path / "dst", max_iter=4, init_checkpoint=str(tmp_path / "src" / "model_final.pth"))
    dst = DefaultTrainer(cfg)
    dst.resume_or_load(resume=True)  # no checkpoint in dst: loads init_checkpoint, starts at 0
    assert dst.start_iter == 0
    for k, v in final_state(src).items():
        assert torch.equal(dst.checkpointer.model.state_dict()[k], v)


def test_trainable_params_freezes_others(tmp_path, ncaplog):
    cfg = make_cfg(tmp_path, max_iter=4, trainable_params=[r"cls_head\."])
    trainer = DefaultTrainer(cfg)
    assert "Trainable parameters: 2 tensors (27 values); frozen: 6 tensors" in ncaplog.text
    model = trainer.checkpointer.model
    before = final_state(trainer)
    trainer.train()
    after = final_state(trainer)
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == ["cls_head.bias", "cls_head.weight"]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["cls_head.weight", "cls_head.bias"]


def test_eval_hook_and_best_checkpointer(tmp_path):
    model = ToyModel()
    trainer = SimpleTrainer(model, toy_loader(), torch.optim.SGD(model.parameters(), lr=0.1))
    scores = iter([0.5, 0.9, 0.7, 0.8])
    evals = []

    def eval_fn():
        evals.append(trainer.iter)
        return {"bbox": {"AP": next(scores)}}

    saved = []

    class FakeCheckpointer:
        def save(self, name, **kw):
            saved.append((name, kw["iteration"], kw["best_metric"]))

    trainer.register_hooks([EvalHook(2, eval_fn), hooks.BestCheckpointer(2, FakeCheckpointer(), "bbox/AP")])
    trainer.train(0, 7)
    assert evals == [1, 3, 5, 7]  # every 2 iterations + once after training
    assert saved == [("model_best", 1, 0.5), ("model_best", 3, 0.9)]
    assert trainer.storage.history("bbox/AP").values()[-1] == (0.8, 7)


def test_validation_loss_hook(tmp_path):
    model = ToyModel()
    trainer = SimpleTrainer(model, toy_loader(), torch.optim.SGD(model.parameters(), lr=0.0))
    trainer.register_hooks([hooks.ValidationLoss(model, toy_loader(seed=5), period=2, num_batches=3)])
    trainer.train(0, 4)
    val = trainer.storage.history("val_loss_cls").values()
    assert [it for _, it in val] == [1, 3]  # every 2 iterations
    # lr=0 keeps the weights fixed, so the first value is the mean loss over 3 fresh validation batches.
    gen = toy_loader(seed=5)
    with torch.no_grad():
        expected = [model(next(gen))["loss_cls"] for _ in range(3)]
    assert val[0][0] == pytest.approx(float(sum(expected) / 3), rel=1e-6)
    total = trainer.storage.history("val_total_loss").values()[0][0]
    assert total == pytest.approx(val[0][0] + trainer.storage.history("val_loss_box_reg").values()[0][0])


def test_plot_curves(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        "\n".join(json.dumps({"iteration": i, "total_loss": 1 / (i + 1), "lr": 0.01}) for i in range(5))
        + '\n{"iteration": 4, "bbox/AP": 30.0}\n{broken'
    )
    import matplotlib.axes

    plotted, bars = {}, {}
    original_plot, original_barh = matplotlib.axes.Axes.plot, matplotlib.axes.Axes.barh

    def recording_plot(ax, xs, ys, *args, label=None, **kwargs):
        plotted[label] = (list(xs), list(ys))
        return original_plot(ax, xs, ys, *args, label=label, **kwargs)

    def recording_barh(ax, y, width, *args, **kwargs):
        bars[ax.get_title() or len(bars)] = list(width)
        return original_barh(ax, y, width, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(matplotlib.axes.Axes, "plot", recording_plot)
        mp.setattr(matplotlib.axes.Axes, "barh", recording_barh)
        out = hooks.plot_metrics(str(metrics), str(tmp_path / "curves.png"))
    # every numeric series against its iterations; the half-written last line is skipped; the LR is drawn
    # unlabelled in its own panel; a metric evaluated once is a labelled bar
    assert plotted == {
        "total_loss": ([0, 1, 2, 3, 4], [1.0, 0.5, 1 / 3, 0.25, 0.2]),
        None: ([0, 1, 2, 3, 4], [0.01] * 5),
    }
    assert list(bars.values()) == [[30.0]]
    # three 7.5 x 3.8 inch panels (losses, learning rate, the AP family) in two columns, at 100 dpi
    with Image.open(out) as image:
        assert image.size == (1500, 760)


def test_argument_parser_takes_flags_anywhere():
    parse = default_argument_parser().parse_args
    args = parse(["--config-file", "c.py", "--num-gpus", "2", "--resume", "train.max_iter=10", "model.x=[1,2]"])
    assert args.config_file == "c.py" and args.num_gpus == 2 and args.resume and not args.eval_only
    assert args.opts == ["train.max_iter=10", "model.x=[1,2]"]
    assert args.num_machines == 1 and args.machine_rank == 0 and not args.overwrite
    # the README's resume command: overrides before the flag
    args = parse(["--config-file", "c.py", "train.output_dir=out", "--resume"])
    assert args.resume and args.opts == ["train.output_dir=out"]
    args = parse(["train.seed=3", "--eval-only", "--config-file", "c.py", "train.output_dir=o", "--num-gpus", "2"])
    assert args.eval_only and args.config_file == "c.py" and args.num_gpus == 2
    assert args.opts == ["train.seed=3", "train.output_dir=o"]
    with pytest.raises(SystemExit):  # a mistyped flag is an error, not an override
        parse(["--config-file", "c.py", "--resmue"])


# ------------------------------------------------------------------------------------------------
# End to end through train_net.py (with the evaluation engineer's inference_on_dataset)
# ------------------------------------------------------------------------------------------------
def toy_test_loader(num_batches: int = 3, seed: int = 99):
    gen = toy_loader(batch_size=2, seed=seed)
    return [next(gen) for _ in range(num_batches)]


class ToyAccuracy:
    """A DatasetEvaluator-like accuracy over the toy labels."""

    def reset(self):
        self.correct, self.total = 0, 0

    def process(self, inputs, outputs):
        for i, o in zip(inputs, outputs):
            self.correct += int(o["instances"]["pred_classes"][0]) == i["label"]
            self.total += 1

    def evaluate(self):
        return {"toy": {"acc": 100.0 * self.correct / self.total, "n": self.total}}


CONFIG_FILE = """
from net_detr2.config import LazyCall as L
from net_detr2.solver import multistep_with_warmup
from test_engine import ToyModel, ToyAccuracy, ToyLoader, toy_test_loader
from ..common.optim import SGD as optimizer
from ..common.train import train

model = L(ToyModel)(in_dim=6)
dataloader = dict(train=L(ToyLoader)(batch_size=2), test=L(toy_test_loader)(), evaluator=L(ToyAccuracy)())
optimizer.lr = 0.1
lr_multiplier = multistep_with_warmup(6, steps=(4,), warmup_iters=1)
train.update(max_iter=6, eval_period=3, log_period=2, device="cpu", seed=3, tensorboard=False,
             checkpointer=dict(period=3, max_to_keep=1))
"""


def _load_train_net():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_net", REPO / "train_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_net_end_to_end(tmp_path, monkeypatch):
    import shutil

    (tmp_path / "configs").mkdir()
    shutil.copytree(REPO / "configs" / "common", tmp_path / "configs" / "common")
    cfg_file = tmp_path / "configs" / "exp" / "toy.py"
    cfg_file.parent.mkdir()
    cfg_file.write_text(CONFIG_FILE)
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # so the config can import test_engine
    train_net = _load_train_net()
    out = tmp_path / "out"
    parser = default_argument_parser()
    args = parser.parse_args(["--config-file", str(cfg_file), f"train.output_dir={out}", "train.seed=4"])
    results = train_net.main(args)
    assert set(results["toy"]) == {"acc", "n"} and results["toy"]["n"] == 6
    metrics = read_metrics(out)
    evals = [m for m in metrics if "toy/acc" in m]
    assert [m["iteration"] for m in evals] == [2, 6]  # after iteration 2 (period 3) and after training
    assert evals[-1]["toy/acc"] == results["toy"]["acc"]
    saved = LazyConfig.load(str(out / "config.yaml"))
    assert saved.train.seed == 4 and saved.model._target_ == "test_engine.ToyModel"
    assert "Environment info" in (out / "log.txt").read_text()
    # max_to_keep=1: only the newest periodic checkpoint and the final one remain.
    assert sorted(p.name for p in out.glob("*.pth")) == ["model_0000005.pth", "model_final.pth"]
    assert (out / "curves.png").exists()
    record = json.loads((out / "final_results.json").read_text())
    assert record == {"iteration": 6, "seed": 4, "stopped_early": False, "results": results}

    args = parser.parse_args(
        [
            "--config-file",
            str(cfg_file),
            "--eval-only",
            f"train.output_dir={tmp_path / 'ev'}",
            f"train.init_checkpoint={out / 'model_final.pth'}",
        ]
    )
    assert train_net.main(args) == results


def test_build_model_from_node_and_registry():
    from net_detr2.modeling.build import build_model
    from net_detr2.modeling.registry import META_ARCH_REGISTRY

    node = L(ToyModel)(in_dim=5)
    model = build_model(node, device="cpu")
    assert isinstance(model, ToyModel) and model.backbone[0].in_features == 5
    name = "ToyModelForBuildTest"
    if name not in META_ARCH_REGISTRY:
        META_ARCH_REGISTRY.register(type(name, (ToyModel,), {}))
    model = build_model(name, in_dim=7)
    assert type(model).__name__ == name and model.backbone[0].in_features == 7
    with pytest.raises(
        KeyError, match="no meta-architecture 'ToyModelForBuildTst'.*did you mean 'ToyModelForBuildTest'"
    ):
        build_model("ToyModelForBuildTst")
    with pytest.raises(TypeError, match="extra arguments"):
        build_model(node, in_dim=3)


def test_tensorboard_writer(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from net_detr2.utils.events import TensorboardXWriter

    writer = TensorboardXWriter(str(tmp_path), window_size=1)
    with EventStorage() as storage:
        for i in range(3):
            storage.iter = i
            storage.put_scalar("total_loss", 1.0 / (i + 1))
            writer.write()
    writer.close()
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    events = acc.Scalars("total_loss")
    assert [(e.step, round(e.value, 4)) for e in events] == [(0, 1.0), (1, 0.5), (2, 0.3333)]


def test_progress_lines_come_early_then_every_log_period(tmp_path, ncaplog):
    """Console lines (iteration, losses, ETA) after iterations 1, 2, 5, 10, 20 of the run, then every log_period."""
    trainer = DefaultTrainer(
        make_cfg(tmp_path, max_iter=70, log_period=30, checkpointer=dict(period=100, max_to_keep=None))
    )
    trainer.resume_or_load(resume=False)
    trainer.train()
    # (each record reaches caplog twice: through propagation and through ncaplog's handler)
    lines = list(dict.fromkeys(r.getMessage() for r in ncaplog.records if r.name == "net_detr2.utils.events"))
    assert [int(m.split("iter: ")[1].split()[0]) for m in lines] == [0, 1, 4, 9, 19, 29, 59, 69]
    assert all("eta: " in m and "loss_cls: " in m for m in lines[:-1])
    assert [m["iteration"] for m in read_metrics(tmp_path) if "loss_cls" in m] == [0, 1, 4, 9, 19, 29, 59, 69]


def test_evaluation_logs_progress_with_an_eta(ncaplog):
    from net_detr2.evaluation import inference_on_dataset

    model = ToyModel().eval()
    results = inference_on_dataset(model, toy_test_loader(num_batches=8), ToyAccuracy(), log_period_s=3600)
    assert results["toy"]["n"] == 16
    progress = list(dict.fromkeys(r.getMessage() for r in ncaplog.records if "Inference done" in r.getMessage()))
    # right after the 5 warm-up batches, whatever the log period
    assert len(progress) == 1 and progress[0].startswith("Inference done 6/8.") and "ETA=0:00:00" in progress[0]
