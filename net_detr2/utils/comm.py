"""Helpers for (optionally) distributed training with ``torch.distributed``.

Every function works without an initialised process group (single process: rank 0, world size 1),
so code can call them unconditionally.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterator
from datetime import timedelta
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
    "broadcast",
    "set_timeout",
    "set_progress_store",
    "collective",
    "CollectiveTimeoutError",
]

# Process group of the processes on this machine; set by `launch`.
_LOCAL_PROCESS_GROUP = None
# A key-value store every rank reaches (set by `launch`): each rank notes there the collective it enters, so that
# a rank whose collective times out can name the ranks that never arrived.
_PROGRESS_STORE = None
_TIMEOUT_S: float | None = None
_SEQUENCE = 0  # collectives entered by this process (the same sequence on every rank)


class CollectiveTimeoutError(RuntimeError):
    """A collective operation that did not complete: names this rank, the operation and the ranks missing."""


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


def set_progress_store(store) -> None:
    """The ``torch.distributed`` store `collective` notes progress in (`launch` passes the rendezvous store)."""
    global _PROGRESS_STORE
    _PROGRESS_STORE = store


def set_timeout(seconds: float) -> None:
    """How long any collective operation may wait for the other processes from now on (``train.dist_timeout_s``);
    past it, the operation raises and `collective` turns that into a `CollectiveTimeoutError`."""
    global _TIMEOUT_S
    if not seconds > 0:
        raise ValueError(f"train.dist_timeout_s must be a positive number of seconds, got {seconds!r}")
    _TIMEOUT_S = float(seconds)
    if get_world_size() == 1:
        return
    groups = {dist.group.WORLD, _LOCAL_PROCESS_GROUP}
    if _cpu_group.cache_info().currsize:
        groups.add(_cpu_group())
    for group in groups - {None}:
        dist.set_timeout(timedelta(seconds=seconds), group)


def _progress_key(rank: int) -> str:
    return f"net_detr2/progress/{rank}"


def _missing_ranks() -> str:
    """Which ranks have not entered this process' current collective, from the notes in the progress store."""
    if _PROGRESS_STORE is None:
        return ""
    late = []
    for rank in range(get_world_size()):
        if rank == get_rank():
            continue
        try:
            if not _PROGRESS_STORE.check([_progress_key(rank)]):
                late.append(f"rank {rank} (no collective yet)")
                continue
            seq, what, when = _PROGRESS_STORE.get(_progress_key(rank)).decode().split("\t")
        except (RuntimeError, ValueError):
            continue  # the store itself is unreachable: say nothing rather than guess
        if int(seq) < _SEQUENCE:
            late.append(f"rank {rank} (last seen entering '{what}' {time.time() - float(when):.0f} s ago)")
    if not late:
        return ""
    return "; not arrived: " + ", ".join(late) + " -- hung or dead (see its log.txt.rankN)"


@contextlib.contextmanager
def collective(what: str) -> Iterator[None]:
    """Run the collective operation(s) of the block under the name ``what``.

    A timeout or a lost peer inside becomes a `CollectiveTimeoutError` that names this rank, ``what`` and the
    ranks that had not reached it, instead of the backend's bare message (or a silent wait).
    """
    global _SEQUENCE
    if get_world_size() == 1:
        yield
        return
    _SEQUENCE += 1
    if _PROGRESS_STORE is not None:
        _PROGRESS_STORE.set(_progress_key(get_rank()), f"{_SEQUENCE}\t{what}\t{time.time()}")
    try:
        yield
    except CollectiveTimeoutError:
        raise
    except RuntimeError as e:
        message = str(e)
        if "Timed out" in message or "timeout" in message.lower():
            limit = f" within {_TIMEOUT_S:g} s (train.dist_timeout_s)" if _TIMEOUT_S else ""
            raise CollectiveTimeoutError(
                f"rank {get_rank()} of {get_world_size()}: '{what}' did not complete{limit}{_missing_ranks()}"
            ) from e
        if "closed by peer" in message or "Connection reset" in message:
            raise CollectiveTimeoutError(
                f"rank {get_rank()} of {get_world_size()}: '{what}' failed: another process closed the connection "
                "(it stopped on an error or a timeout; see its log)"
            ) from e
        raise


def synchronize() -> None:
    """Barrier across all processes (no-op when not distributed)."""
    if get_world_size() == 1:
        return
    with collective("barrier"):
        if dist.get_backend() == dist.Backend.NCCL and torch.cuda.is_available():
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def broadcast(tensor: torch.Tensor, src: int = 0, what: str = "broadcast") -> None:
    """``dist.broadcast`` of ``tensor`` (in place) from rank ``src`` to every rank, under the name ``what``."""
    if get_world_size() == 1:
        return
    with collective(what):
        dist.broadcast(tensor, src=src)


@functools.lru_cache
def _cpu_group():
    # Object collectives through gloo avoid moving pickled bytes through GPU memory.
    if dist.get_backend() == "nccl":
        return dist.new_group(backend="gloo", timeout=timedelta(seconds=_TIMEOUT_S) if _TIMEOUT_S else None)
    return dist.group.WORLD


def all_gather(data: Any, group=None, what: str = "all_gather") -> list:
    """Gather a picklable object from every rank; returns the list (index = rank)."""
    if get_world_size() == 1:
        return [data]
    with collective(what):
        group = group or _cpu_group()
        world = dist.get_world_size(group)
        if world == 1:
            return [data]
        output = [None] * world
        dist.all_gather_object(output, data, group=group)
    return output


def gather(data: Any, dst: int = 0, group=None, what: str = "gather") -> list:
    """Gather a picklable object onto rank ``dst``; returns the list there and ``[]`` elsewhere."""
    if get_world_size() == 1:
        return [data]
    with collective(what):
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
        with collective("reduce_dict"):
            dist.reduce(values, dst=0)
        if dist.get_rank() == 0 and average:
            values /= world_size
        return dict(zip(names, values))
