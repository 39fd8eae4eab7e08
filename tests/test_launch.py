"""launch: two CPU (gloo) processes train a small model under DDP and end with identical weights."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn import functional as F

from net_detr2.config import LazyCall as L
from net_detr2.engine import DefaultTrainer, default_setup, launch
from net_detr2.solver import get_default_optimizer_params, multistep_with_warmup
from net_detr2.utils import comm


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, batch):
        x = torch.stack([d["x"] for d in batch])
        y = torch.stack([d["y"] for d in batch])
        return {"loss_mse": F.mse_loss(self.fc2(torch.relu(self.fc1(x))), y)}


def rank_loader(start_iter: int = 0):
    """Each rank sees different data (like a sharded sampler); batch i depends on (rank, i)."""
    rank = comm.get_rank()
    i = start_iter
    while True:
        g = torch.Generator().manual_seed(1000 * rank + i)
        yield [{"x": torch.randn(4, generator=g), "y": torch.randn(2, generator=g)} for _ in range(3)]
        i += 1


def _train_worker(out_dir: str):
    torch.set_num_threads(1)
    cfg = DictConfig({}, flags={"allow_objects": True})
    cfg.model = L(TinyNet)()
    cfg.dataloader = {"train": L(rank_loader)()}
    cfg.optimizer = L(torch.optim.SGD)(params=L(get_default_optimizer_params)(), lr=0.1, momentum=0.9)
    cfg.lr_multiplier = multistep_with_warmup(5, steps=(3,), warmup_iters=1)
    cfg.train = dict(
        output_dir=out_dir,
        max_iter=5,
        device="cpu",
        seed=comm.get_rank() * 11,  # different init
        log_period=1,
        tensorboard=False,
        plot_curves=False,
        checkpointer=dict(period=100),
        ddp=dict(broadcast_buffers=False),
    )
    default_setup(cfg, None)  # per-rank log files, config.yaml, seeding
    trainer = DefaultTrainer(cfg)
    assert isinstance(trainer.model, nn.parallel.DistributedDataParallel)
    trainer.resume_or_load(resume=False)
    trainer.train()
    state = {k: v.clone() for k, v in trainer.checkpointer.model.state_dict().items()}
    rank = comm.get_rank()
    reduced = comm.reduce_dict({"a": torch.tensor(float(rank + 1)), "b": torch.tensor(10.0 * rank)})
    comm_results = {
        "all_gather": comm.all_gather({"rank": rank}),
        "gather": comm.gather(rank * 2),
        "reduce_dict": {k: float(v) for k, v in reduced.items()} if rank == 0 else None,
        "shared_seed": comm.shared_random_seed(),
        "local": (comm.get_local_rank(), comm.get_local_size(), comm.is_main_process()),
    }
    torch.save(
        {"world_size": comm.get_world_size(), "rank": rank, "state": state, "comm": comm_results},
        Path(out_dir) / f"rank{comm.get_rank()}.pt",
    )


@pytest.mark.timeout(120)
def test_launch_two_gloo_processes(tmp_path):
    rendezvous_dirs = lambda: set(Path(tempfile.gettempdir()).glob("net_detr2_dist_*"))  # noqa: E731
    before = rendezvous_dirs()
    launch(_train_worker, num_gpus_per_machine=2, backend="gloo", args=(str(tmp_path),))
    assert rendezvous_dirs() == before  # the 'auto' rendezvous file's folder is removed
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world_size"] == r1["world_size"] == 2 and (r0["rank"], r1["rank"]) == (0, 1)
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    # Training moved the weights away from the (rank-0, broadcast) initialization.
    torch.manual_seed(0)
    assert not torch.equal(r0["state"]["fc1.weight"], TinyNet().fc1.weight.detach())
    assert (tmp_path / "model_final.pth").exists() and (tmp_path / "metrics.json").exists()
    assert (tmp_path / "log.txt").exists() and (tmp_path / "log.txt.rank1").exists()
    assert (tmp_path / "config.yaml").exists()
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
