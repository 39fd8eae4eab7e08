"""Helpers for (optionally) distributed training with ``torch.distributed``.

Every function works without an initialised process group (single process: rank 0, world size 1),
so code can call them unconditionally.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "get_world_size",
    "get_rank",
    "get_local_rank",
    "get_local_size",
    "is_main_process",
    "synchronize",
    "all_gather",
    "gather",
    "reduce_dict",
    "shared_random_seed",
    "create_local_process_group",
]

# Process group of the processes on this machine; set by `launch`.
_LOCAL_PROCESS_GROUP = None


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if _initialized() else 1


def get_rank() -> int:
    return dist.get_rank() if _initialized() else 0


def get_local_rank() -> int:
    """Rank of this process among the processes on this machine."""
    if not _initialized():
        return 0
    if _LOCAL_PROCESS_GROUP is not None:
        return dist.get_rank(group=_LOCAL_PROCESS_GROUP)
    return int(os.environ.get("LOCAL_RANK", 0))


def get_local_size() -> int:
    """Number of processes on this machine."""
    if not _initialized():
        return 1
    if _LOCAL_PROCESS_GROUP is not None:
        return dist.get_world_size(group=_LOCAL_PROCESS_GROUP)
    return int(os.environ.get("LOCAL_WORLD_SIZE", get_world_size()))


def is_main_process() -> bool:
    return get_rank() == 0


def create_local_process_group(num_workers_per_machine: int) -> None:
    """Create the per-machine process group. Collective: every process of the job must call it."""
    global _LOCAL_PROCESS_GROUP
    if _LOCAL_PROCESS_GROUP is not None:
        return
    num_machines = get_world_size() // num_workers_per_machine
    machine_rank = get_rank() // num_workers_per_machine
    for i in range(num_machines):
        ranks = list(range(i * num_workers_per_machine, (i + 1) * num_workers_per_machine))
        pg = dist.new_group(ranks)
        if i == machine_rank:
            _LOCAL_PROCESS_GROUP = pg


def synchronize() -> None:
    """Barrier across all processes (no-op when not distributed)."""
    if get_world_size() == 1:
        return
    if dist.get_backend() == dist.Backend.NCCL and torch.cuda.is_available():
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


@functools.lru_cache
def _cpu_group():
    # Object collectives through gloo avoid moving pickled bytes through GPU memory.
    if dist.get_backend() == "nccl":
        return dist.new_group(backend="gloo")
    return dist.group.WORLD


def all_gather(data: Any, group=None) -> list:
    """Gather a picklable object from every rank; returns the list (index = rank)."""
    if get_world_size() == 1:
        return [data]
    group = group or _cpu_group()
    world = dist.get_world_size(group)
    if world == 1:
        return [data]
    output = [None] * world
    dist.all_gather_object(output, data, group=group)
    return output


def gather(data: Any, dst: int = 0, group=None) -> list:
    """Gather a picklable object onto rank ``dst``; returns the list there and ``[]`` elsewhere."""
    if get_world_size() == 1:
        return [data]
    group = group or _cpu_group()
    world = dist.get_world_size(group)
    if world == 1:
        return [data]
    if dist.get_rank(group=group) == dst:
        output = [None] * world
        dist.gather_object(data, output, dst=dst, group=group)
        return output
    dist.gather_object(data, None, dst=dst, group=group)
    return []


def shared_random_seed() -> int:
    """A random integer that is the same on every rank (rank 0's draw)."""
    ints = np.random.randint(2**31)
    return all_gather(ints)[0]


def reduce_dict(input_dict: dict[str, torch.Tensor], average: bool = True) -> dict[str, torch.Tensor]:
    """Sum (or average) a dict of scalar tensors over ranks; the result is valid on rank 0."""
    world_size = get_world_size()
    if world_size < 2:
        return input_dict
    with torch.no_grad():
        names = sorted(input_dict.keys())
        values = torch.stack([input_dict[k] for k in names], dim=0)
        dist.reduce(values, dst=0)
        if dist.get_rank() == 0 and average:
            values /= world_size
        return dict(zip(names, values))
