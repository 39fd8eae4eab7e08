"""Start one process per GPU (or per CPU worker) and set up ``torch.distributed``."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from net_detr2.utils import comm

__all__ = ["DEFAULT_TIMEOUT", "launch"]

DEFAULT_TIMEOUT = timedelta(minutes=30)
logger = logging.getLogger(__name__)


def launch(
    main_func: Callable[..., Any],
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str | None = None,
    args: tuple = (),
    timeout: timedelta = DEFAULT_TIMEOUT,
    backend: str | None = None,
) -> None:
    """Run ``main_func(*args)`` in ``num_machines * num_gpus_per_machine`` processes.

    Args:
        num_gpus_per_machine: processes on this machine. With CUDA each uses one GPU (NCCL);
            without CUDA they are CPU processes talking over gloo (``--num-gpus 2`` on a laptop
            runs 2 CPU workers).
        num_machines, machine_rank: multi-node jobs; every machine runs this with its rank.
        dist_url: ``"tcp://host:port"`` of machine 0; ``None``/``"auto"`` (single machine only)
            meets in a rendezvous file in a fresh temporary folder.
        backend: ``"nccl"``/``"gloo"``; default NCCL when CUDA is available, else gloo.
    A single process (world size 1) calls ``main_func`` directly, without ``torch.distributed``.
    """
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        main_func(*args)
        return
    rendezvous_dir = None
    if dist_url in (None, "auto"):
        if num_machines != 1:
            raise ValueError("dist_url='auto' only works on a single machine; give tcp://<machine 0>:<port>")
        # A file, not a free TCP port: a port found free here can be taken by another process
        # before rank 0 binds it.
        rendezvous_dir = tempfile.mkdtemp(prefix="net_detr2_dist_")
        dist_url = f"file://{rendezvous_dir}/rendezvous"
    if num_machines > 1 and dist_url.startswith("file://"):
        logger.warning("file:// rendezvous across machines needs a shared file system")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and torch.cuda.device_count() < num_gpus_per_machine:
        raise RuntimeError(
            f"launch: {num_gpus_per_machine} processes per machine requested with NCCL but only "
            f"{torch.cuda.device_count()} GPUs are visible"
        )
    try:
        mp.start_processes(
            _distributed_worker,
            nprocs=num_gpus_per_machine,
            args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args, timeout, backend),
            daemon=False,
            start_method="spawn",
        )
    finally:
        if rendezvous_dir is not None:
            shutil.rmtree(rendezvous_dir, ignore_errors=True)


def _rendezvous_store(url: str, world_size: int, rank: int, timeout: timedelta) -> dist.Store | None:
    """The key-value store the ranks meet in, for ``file://`` and ``tcp://`` URLs (None for others, e.g. env://)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return dist.FileStore(parsed.path, world_size)
    if parsed.scheme == "tcp":
        return dist.TCPStore(parsed.hostname, parsed.port, world_size, is_master=rank == 0, timeout=timeout)
    return None


def _distributed_worker(
    local_rank: int,
    main_func: Callable,
    world_size: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    dist_url: str,
    args: tuple,
    timeout: timedelta,
    backend: str,
) -> None:
    global_rank = machine_rank * num_gpus_per_machine + local_rank
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    try:
        store = _rendezvous_store(dist_url, world_size, global_rank, timeout)
        if store is None:
            dist.init_process_group(
                backend=backend, init_method=dist_url, world_size=world_size, rank=global_rank, timeout=timeout
            )
        else:
            dist.init_process_group(
                backend=backend, store=store, world_size=world_size, rank=global_rank, timeout=timeout
            )
    except Exception as e:
        logging.getLogger(__name__).error(f"Process group URL: {dist_url}")
        raise RuntimeError(f"launch: rank {global_rank} could not join the process group at {dist_url}: {e}") from e
    # the ranks note the collective they enter in the store, so a timed-out rank can name the ranks missing
    comm.set_progress_store(store)
    comm.create_local_process_group(num_gpus_per_machine)
    comm.synchronize()
    try:
        main_func(*args)
    finally:
        # No barrier here: a rank that failed must not wait for the others.
        dist.destroy_process_group()
