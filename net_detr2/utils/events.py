"""Training-time metrics: ``EventStorage`` collects scalars per iteration; writers print/save them."""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any

import torch
from fvcore.common.history_buffer import HistoryBuffer

__all__ = [
    "get_event_storage",
    "has_event_storage",
    "EventStorage",
    "EventWriter",
    "JSONWriter",
    "TensorboardXWriter",
    "CommonMetricPrinter",
]

_CURRENT_STORAGE_STACK: list[EventStorage] = []


def get_event_storage() -> EventStorage:
    """The innermost ``EventStorage`` in use (raises if none: call inside ``with EventStorage():``)."""
    if not _CURRENT_STORAGE_STACK:
        raise RuntimeError("get_event_storage() has to be called inside a 'with EventStorage(...)' context")
    return _CURRENT_STORAGE_STACK[-1]


def has_event_storage() -> bool:
    return bool(_CURRENT_STORAGE_STACK)


class EventStorage:
    """Per-iteration scalars (with history), images and histograms of a training run."""

    def __init__(self, start_iter: int = 0):
        self._history: dict[str, HistoryBuffer] = defaultdict(HistoryBuffer)
        self._smoothing_hints: dict[str, bool] = {}
        self._latest_scalars: dict[str, tuple[float, int]] = {}
        self._iter = start_iter
        self._current_prefix = ""
        self._vis_data: list = []
        self._histograms: list = []

    # -- scalars --------------------------------------------------------------------------------
    def put_scalar(self, name: str, value: Any, smoothing_hint: bool = True, cur_iter: int | None = None) -> None:
        """Record ``value`` for ``name`` at the current iteration (or ``cur_iter``).

        ``smoothing_hint``: whether writers should report a windowed median rather than the latest value.
        """
        name = self._current_prefix + name
        cur_iter = self._iter if cur_iter is None else cur_iter
        value = float(value)
        self._history[name].update(value, cur_iter)
        self._latest_scalars[name] = (value, cur_iter)
        existing = self._smoothing_hints.get(name)
        if existing is not None and existing != smoothing_hint:
            raise ValueError(f"Scalar '{name}' was put with different smoothing_hint values")
        self._smoothing_hints[name] = smoothing_hint

    def put_scalars(self, *, smoothing_hint: bool = True, cur_iter: int | None = None, **kwargs: Any) -> None:
        for k, v in kwargs.items():
            self.put_scalar(k, v, smoothing_hint=smoothing_hint, cur_iter=cur_iter)

    def put_image(self, img_name: str, img_tensor: torch.Tensor) -> None:
        """Queue a CHW image (float in [0, 1] or uint8) for the writers (e.g. TensorBoard)."""
        self._vis_data.append((img_name, img_tensor, self._iter))

    def clear_images(self) -> None:
        self._vis_data = []

    def put_histogram(self, hist_name: str, hist_tensor: torch.Tensor, bins: int = 1000) -> None:
        t = hist_tensor.detach().float().cpu()
        self._histograms.append(dict(tag=hist_name, values=t, bins=bins, global_step=self._iter))

    def clear_histograms(self) -> None:
        self._histograms = []

    def history(self, name: str) -> HistoryBuffer:
        if name not in self._history:
            raise KeyError(f"No history metric available for '{name}' (known: {sorted(self._history)})")
        return self._history[name]

    def histories(self) -> dict[str, HistoryBuffer]:
        return self._history

    def latest(self) -> dict[str, tuple[float, int]]:
        """``{name: (latest value, iteration it was put at)}``."""
        return self._latest_scalars

    def latest_with_smoothing_hint(self, window_size: int = 20) -> dict[str, tuple[float, int]]:
        """Like ``latest`` but scalars with smoothing hint are the median over the last ``window_size`` values."""
        result = {}
        for k, (v, itr) in self._latest_scalars.items():
            result[k] = (self._history[k].median(window_size) if self._smoothing_hints[k] else v, itr)
        return result

    def smoothing_hints(self) -> dict[str, bool]:
        return self._smoothing_hints

    # -- iteration ------------------------------------------------------------------------------
    def step(self) -> None:
        self._iter += 1

    @property
    def iter(self) -> int:
        return self._iter

    @iter.setter
    def iter(self, val: int) -> None:
        self._iter = int(val)

    @property
    def iteration(self) -> int:  # alias used by some writers
        return self._iter

    def __enter__(self) -> EventStorage:
        _CURRENT_STORAGE_STACK.append(self)
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        assert _CURRENT_STORAGE_STACK[-1] is self
        _CURRENT_STORAGE_STACK.pop()

    @contextmanager
    def name_scope(self, name: str):
        """Prefix every scalar put inside the block with ``name/``."""
        old = self._current_prefix
        self._current_prefix = name.rstrip("/") + "/"
        try:
            yield
        finally:
            self._current_prefix = old


# ---------------------------------------------------------------------------------------------
class EventWriter:
    """Base class of writers; ``write()`` is called periodically from the ``PeriodicWriter`` hook."""

    def write(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class JSONWriter(EventWriter):
    """Append one JSON line per iteration with new scalars to ``json_file`` (e.g. metrics.json).

    Each line holds ``{"iteration": i, name: value, ...}``; smoothed scalars are written as the
    median over the last ``window_size`` values.
    """

    def __init__(self, json_file: str, window_size: int = 20):
        self._json_file = json_file
        self._file_handle = None  # opened at the first write: building the writer touches no file
        self._window_size = window_size
        self._last_write = -1

    def write(self) -> None:
        if self._file_handle is None:
            os.makedirs(os.path.dirname(os.path.abspath(self._json_file)), exist_ok=True)
            self._file_handle = open(self._json_file, "a", encoding="utf-8")
        storage = get_event_storage()
        to_save: dict[int, dict[str, float]] = defaultdict(dict)
        for k, (v, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr <= self._last_write:
                continue
            to_save[itr][k] = v
        if to_save:
            self._last_write = max(to_save.keys())
        for itr, scalars in sorted(to_save.items()):
            scalars["iteration"] = itr
            self._file_handle.write(json.dumps(scalars, sort_keys=True) + "\n")
        self._file_handle.flush()
        try:
            os.fsync(self._file_handle.fileno())
        except OSError:
            pass

    def close(self) -> None:
        if self._file_handle is not None:
            self._file_handle.close()


class TensorboardXWriter(EventWriter):
    """Write scalars (and queued images/histograms) to TensorBoard event files in ``log_dir``."""

    def __init__(self, log_dir: str, window_size: int = 20, **kwargs: Any):
        self._log_dir, self._kwargs = log_dir, kwargs
        self._window_size = window_size
        self._writer = None  # the event file is created at the first write
        self._last_write = -1

    def write(self) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(self._log_dir, **self._kwargs)
        storage = get_event_storage()
        new_last_write = self._last_write
        for k, (v, itr) in storage.latest_with_smoothing_hint(self._window_size).items():
            if itr > self._last_write:
                self._writer.add_scalar(k, v, itr)
                new_last_write = max(new_last_write, itr)
        self._last_write = new_last_write
        if storage._vis_data:
            for img_name, img, step in storage._vis_data:
                self._writer.add_image(img_name, img, step)
            storage.clear_images()
        if storage._histograms:
            for params in storage._histograms:
                self._writer.add_histogram(
                    params["tag"],
                    params["values"],
                    params["global_step"],
                    bins="auto" if params["bins"] is None else "tensorflow",
                )
            storage.clear_histograms()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class CommonMetricPrinter(EventWriter):
    """Print the common metrics to the console: ETA, iteration, losses, lr, times, max memory."""

    def __init__(self, max_iter: int | None = None, window_size: int = 20):
        self.logger = logging.getLogger("net_detr2.utils.events")
        self._max_iter = max_iter
        self._window_size = window_size
        self._last_write: tuple[int, float] | None = None

    def _get_eta(self, storage: EventStorage) -> str | None:
        if self._max_iter is None:
            return None
        iteration = storage.iter
        try:
            eta_seconds = storage.history("time").median(1000) * (self._max_iter - iteration - 1)
            storage.put_scalar("eta_seconds", eta_seconds, smoothing_hint=False)
            return str(datetime.timedelta(seconds=int(eta_seconds)))
        except KeyError:
            # Before IterationTimer has data: estimate from wall time between writes.
            eta = None
            if self._last_write is not None:
                last_iter, last_time = self._last_write
                per_iter = (time.perf_counter() - last_time) / max(iteration - last_iter, 1)
                eta = str(datetime.timedelta(seconds=int(per_iter * (self._max_iter - iteration - 1))))
            self._last_write = (iteration, time.perf_counter())
            return eta

    def write(self) -> None:
        storage = get_event_storage()
        iteration = storage.iter
        if self._max_iter is not None and iteration == self._max_iter:
            # After training, the iteration counter is one past the end; nothing new to print.
            return
        hist = storage.histories()

        try:
            avg_data_time = hist["data_time"].avg(self._window_size) if "data_time" in hist else None
            last_data_time = hist["data_time"].latest() if "data_time" in hist else None
        except (KeyError, IndexError):
            avg_data_time = last_data_time = None
        iter_time = hist["time"].global_avg() if "time" in hist else None
        last_iter_time = hist["time"].latest() if "time" in hist else None
        lr = f"{hist['lr'].latest():.5g}" if "lr" in hist else "N/A"
        eta = self._get_eta(storage)
        max_mem_mb = (torch.cuda.max_memory_allocated() / 1024.0 / 1024.0) if torch.cuda.is_available() else None
        losses = "  ".join(f"{k}: {v.median(self._window_size):.4g}" for k, v in hist.items() if "loss" in k)
        self.logger.info(
            " {eta}iter: {iter}  {losses}  {time}{data_time}lr: {lr}  {memory}".format(
                eta=f"eta: {eta}  " if eta else "",
                iter=iteration,
                losses=losses,
                time=(f"time: {iter_time:.4f} (last: {last_iter_time:.4f})  " if iter_time is not None else ""),
                data_time=(
                    f"data_time: {avg_data_time:.4f} (last: {last_data_time:.4f})  "
                    if avg_data_time is not None
                    else ""
                ),
                lr=lr,
                memory=f"max_mem: {max_mem_mb:.0f}M" if max_mem_mb is not None else "",
            )
        )
