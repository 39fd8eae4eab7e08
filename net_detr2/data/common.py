"""Map-style datasets used by the loaders."""

from __future__ import annotations

import logging
import pickle
import random
from collections.abc import Callable, Sequence

import numpy as np
import torch.utils.data as data

__all__ = ["DatasetFromList", "MapDataset"]

logger = logging.getLogger(__name__)


class DatasetFromList(data.Dataset):
    """A list as a dataset. With ``serialize=True`` the items are pickled into one numpy buffer, so that
    worker processes do not touch (and copy, through reference counting) millions of small Python objects.
    ``copy=True`` returns a fresh copy of each item (mappers may then modify it)."""

    def __init__(self, lst: Sequence, copy: bool = True, serialize: bool = True):
        self._copy = copy
        self._serialize = serialize
        if serialize:
            blobs = [np.frombuffer(pickle.dumps(x, protocol=-1), dtype=np.uint8) for x in lst]
            self._addr = np.cumsum(np.asarray([len(b) for b in blobs], dtype=np.int64))
            self._lst = np.concatenate(blobs) if blobs else np.zeros(0, dtype=np.uint8)
        else:
            self._lst = list(lst)

    def __len__(self) -> int:
        return len(self._addr) if self._serialize else len(self._lst)

    def __getitem__(self, idx: int):
        if self._serialize:
            start = 0 if idx == 0 else int(self._addr[idx - 1])
            end = int(self._addr[idx])
            return pickle.loads(memoryview(self._lst[start:end]))
        if self._copy:
            import copy

            return copy.deepcopy(self._lst[idx])
        return self._lst[idx]


class MapDataset(data.Dataset):
    """``map_func(dataset[key])`` where ``key`` is an index or an ``(index, sample_seed)`` pair.

    With a seed, numpy's and Python's global RNGs are seeded with it for the duration of the call (and
    restored afterwards), so the random augmentation of a sample depends only on its seed — not on which
    process maps it, nor on what was mapped before. This is what keeps a run's data identical across
    ``num_workers`` settings and across a resume.

    ``map_func`` returning None, or (with ``skip_unreadable=True``) raising `UnreadableImageError`, makes
    the sample be replaced by the next index (deterministically); skipped files are counted and logged.
    """

    def __init__(self, dataset, map_func: Callable, skip_unreadable: bool = False, max_retries: int = 20):
        self._dataset = dataset
        self._map_func = map_func
        self._skip_unreadable = skip_unreadable
        self._max_retries = max_retries
        self.num_skipped = 0

    def __len__(self) -> int:
        return len(self._dataset)

    def _call(self, idx: int, seed: int | None):
        if seed is None:
            return self._map_func(self._dataset[idx])
        np_state, py_state = np.random.get_state(), random.getstate()
        np.random.seed(seed % (2**32))
        random.seed(seed)
        try:
            return self._map_func(self._dataset[idx])
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)

    def __getitem__(self, key):
        from .detection_utils import UnreadableImageError

        idx, seed = key if isinstance(key, tuple) else (key, None)
        cur = idx
        for _ in range(self._max_retries + 1):
            try:
                out = self._call(cur, seed)
            except UnreadableImageError as e:
                if not self._skip_unreadable:
                    raise
                self.num_skipped += 1
                logger.warning("Skipping unreadable image (%d skipped so far in this process): %s", self.num_skipped, e)
                out = None
            if out is not None:
                return out
            cur = (cur + 1) % len(self._dataset)
        raise RuntimeError(
            f"MapDataset: {self._max_retries + 1} consecutive samples from index {idx} could not be "
            "mapped (unreadable images, or the mapper returned None)"
        )
