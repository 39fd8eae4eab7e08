"""Two CPU (gloo) processes: DDP training ends with identical parameters *and* buffers on every rank, without
deprecation warnings; a rank that hangs makes the run stop with an error naming the rank and the operation."""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import pytest
import torch
from _toy import ToyData, ToyNet, toy_cfg
from torch import nn

from net_detr2.engine import DefaultTrainer, HookBase, default_setup, launch
from net_detr2.utils import comm


class _SleepAt(HookBase):
    """Rank 1 stops answering (sleeps) before iteration ``it``."""

    def __init__(self, it: int):
        self.it = it

    def before_step(self):
        if comm.get_rank() == 1 and self.trainer.iter == self.it:
            time.sleep(120)


def _worker(out_dir: str):
    torch.set_num_threads(1)
    rank = comm.get_rank()
    cfg = toy_cfg(out_dir, max_iter=5, seed=11, plot_curves=False)
    cfg.dataloader.train = {"_target_": ToyData, "rank_dependent": True}  # each rank its own data
    cfg.train.checkpointer.period = 100
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        default_setup(cfg, None)  # per-rank log files, config.yaml, the collective timeout
        trainer = DefaultTrainer(cfg)
        assert isinstance(trainer.model, nn.parallel.DistributedDataParallel)
        trainer.resume_or_load(resume=False)
        trainer.train()
    state = {k: v.clone() for k, v in trainer.checkpointer.model.state_dict().items()}
    reduced = comm.reduce_dict({"a": torch.tensor(float(rank + 1)), "b": torch.tensor(10.0 * rank)})
    comm_results = {
        "all_gather": comm.all_gather({"rank": rank}),
        "gather": comm.gather(rank * 2),
        "reduce_dict": {k: float(v) for k, v in reduced.items()} if rank == 0 else None,
        "shared_seed": comm.shared_random_seed(),
        "local": (comm.get_local_rank(), comm.get_local_size(), comm.is_main_process()),
    }
    warned = [str(w.message) for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    torch.save(
        {"rank": rank, "state": state, "comm": comm_results, "warnings": warned},
        Path(out_dir) / f"rank{rank}.pt",
    )
    # Then a run in which rank 1 hangs before iteration 2: rank 0 must stop within train.dist_timeout_s.
    cfg = toy_cfg(Path(out_dir) / "hang", max_iter=4, dist_timeout_s=4, plot_curves=False)
    default_setup(cfg, None)
    trainer = DefaultTrainer(cfg)
    trainer.register_hooks([_SleepAt(2)])
    trainer.resume_or_load(resume=False)
    trainer.train()


@pytest.mark.timeout(240)
def test_two_gloo_processes_train_identical_models_and_a_hang_names_the_rank(tmp_path, monkeypatch):
    # the 'auto' rendezvous folder goes to a temporary folder of this test's own
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "out"
    started = time.monotonic()
    with pytest.raises(Exception) as e:
        launch(_worker, num_gpus_per_machine=2, backend="gloo", args=(str(out),))
    # rank 0 gave up waiting for rank 1 in the gradient all-reduce of iteration 2, after train.dist_timeout_s
    message = str(e.value)
    assert "CollectiveTimeoutError" in message, message
    assert "rank 0 of 2: 'backward with the gradient all-reduce, iteration 2' did not complete within 4 s" in message
    assert "not arrived: rank 1 (last seen entering" in message, message
    assert time.monotonic() - started < 200  # not a 30-minute wait
    assert list((tmp_path / "tmp").glob("net_detr2_dist_*")) == []  # the rendezvous folder is removed

    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert (r0["rank"], r1["rank"]) == (0, 1)
    assert r0["warnings"] == [] and r1["warnings"] == []  # e.g. no `broadcast_buffers` deprecation
    # parameters and buffers (BatchNorm statistics, computed from different data on each rank) are identical
    assert r0["state"].keys() == r1["state"].keys() >= {"bn.running_mean", "bn.running_var", "bn.num_batches_tracked"}
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    fresh = ToyNet()
    assert not torch.equal(r0["state"]["bn.running_mean"], fresh.bn.running_mean)  # training changed them
    assert int(r0["state"]["bn.num_batches_tracked"]) == 5
    assert (out / "model_final.pth").exists() and (out / "metrics.json").exists()
    assert (out / "log.txt").exists() and (out / "log.txt.rank1").exists() and (out / "config.yaml").exists()
    c0, c1 = r0["comm"], r1["comm"]
    assert c0["all_gather"] == c1["all_gather"] == [{"rank": 0}, {"rank": 1}]
    assert c0["gather"] == [0, 2] and c1["gather"] == []
    assert c0["reduce_dict"] == {"a": 1.5, "b": 5.0}  # averaged over the 2 ranks
    assert c0["shared_seed"] == c1["shared_seed"]
    assert c0["local"] == (0, 2, True) and c1["local"] == (1, 2, False)


def test_launch_single_process_calls_directly():
    calls = []
    launch(calls.append, num_gpus_per_machine=1, args=("ran",))
    assert calls == ["ran"] and comm.get_world_size() == 1
