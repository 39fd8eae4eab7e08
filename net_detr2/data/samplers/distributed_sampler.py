"""Index samplers: an infinite shuffled stream for training, one pass over the data for inference.

Each rank takes its share of the same global stream, so the union over ranks is what a single process
with the whole batch would see.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data.sampler import Sampler

from net_detr2.utils import comm

__all__ = ["TrainingSampler", "RepeatFactorTrainingSampler", "InferenceSampler"]

logger = logging.getLogger(__name__)


class TrainingSampler(Sampler):
    """Infinite stream of indices in ``[0, size)``: successive random permutations (or ``0..size-1``
    repeated when ``shuffle=False``), generated from ``seed``.

    The global stream is the same on every rank; rank ``r`` of ``W`` yields positions ``r, r+W, r+2W, ...``
    of it. ``seed=None`` draws one seed shared by all ranks.
    """

    def __init__(
        self,
        size: int,
        shuffle: bool = True,
        seed: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        if not isinstance(size, int) or size <= 0:
            raise ValueError(f"TrainingSampler(size=...) must be a positive int, got {size!r}")
        self._size = size
        self._shuffle = shuffle
        self._seed = int(comm.shared_random_seed() if seed is None else seed)
        self._rank = comm.get_rank() if rank is None else rank
        self._world_size = comm.get_world_size() if world_size is None else world_size
        if not 0 <= self._rank < self._world_size:
            raise ValueError(f"TrainingSampler: rank {self._rank} not in [0, {self._world_size})")

    @property
    def seed(self) -> int:
        """Seed of the index stream; setting it (before iterating) restarts the stream from another seed."""
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._seed = int(value)

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(self._infinite_indices(), self._rank, None, self._world_size)

    def _infinite_indices(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self._seed)
        while True:
            if self._shuffle:
                yield from torch.randperm(self._size, generator=g).tolist()
            else:
                yield from range(self._size)


class RepeatFactorTrainingSampler(TrainingSampler):
    """`TrainingSampler` where image ``i`` appears ``repeat_factors[i]`` times per epoch on average (LVIS-style
    class-aware resampling). The fractional part is drawn stochastically, per epoch, from the same seed."""

    def __init__(
        self,
        repeat_factors: torch.Tensor | Sequence[float],
        *,
        shuffle: bool = True,
        seed: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        rf = torch.as_tensor(repeat_factors, dtype=torch.float32)
        if rf.ndim != 1 or len(rf) == 0 or (rf < 0).any():
            raise ValueError(
                "RepeatFactorTrainingSampler: repeat_factors must be a non-empty 1-D tensor of values >= 0"
            )
        super().__init__(len(rf), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size)
        self._int_part = torch.trunc(rf)
        self._frac_part = rf - self._int_part

    @staticmethod
    def repeat_factors_from_category_frequency(
        dataset_dicts: list[dict], repeat_thresh: float, sqrt: bool = True
    ) -> torch.Tensor:
        """Per image: ``max over its categories c of max(1, (t / f_c) ** 0.5)`` (or without the square root),
        ``f_c`` the fraction of images containing ``c``."""
        counts: dict[int, int] = defaultdict(int)
        for d in dataset_dicts:
            for c in {a["category_id"] for a in d["annotations"]}:
                counts[c] += 1
        n = len(dataset_dicts)
        cat_rep = {}
        for c, k in counts.items():
            r = repeat_thresh / (k / n)
            cat_rep[c] = max(1.0, math.sqrt(r) if sqrt else r)
        rep = [max([cat_rep[a["category_id"]] for a in d["annotations"]], default=1.0) for d in dataset_dicts]
        return torch.tensor(rep, dtype=torch.float32)

    def _get_epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        rands = torch.rand(len(self._frac_part), generator=generator)
        rep = self._int_part + (rands < self._frac_part).float()
        return torch.repeat_interleave(torch.arange(len(rep)), rep.long())

    def _infinite_indices(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self._seed)
        while True:
            indices = self._get_epoch_indices(g)
            if len(indices) == 0:
                raise ValueError("RepeatFactorTrainingSampler: an epoch has no samples (all repeat factors < 1?)")
            if self._shuffle:
                indices = indices[torch.randperm(len(indices), generator=g)]
            yield from indices.tolist()


class InferenceSampler(Sampler):
    """Every index of ``[0, size)`` exactly once over all ranks, in contiguous shards: rank ``r`` gets
    ``[begin_r, end_r)`` with shard sizes differing by at most one (the first ``size % W`` ranks get one more)."""

    def __init__(self, size: int, rank: int | None = None, world_size: int | None = None):
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"InferenceSampler(size=...) must be an int >= 0, got {size!r}")
        self._size = size
        self._rank = comm.get_rank() if rank is None else rank
        self._world_size = comm.get_world_size() if world_size is None else world_size
        self._local_indices = self._get_local_indices(size, self._world_size, self._rank)

    @staticmethod
    def _get_local_indices(total_size: int, world_size: int, rank: int) -> range:
        shard, extra = divmod(total_size, world_size)
        begin = rank * shard + min(rank, extra)
        end = begin + shard + (1 if rank < extra else 0)
        return range(begin, end)

    def __iter__(self):
        yield from self._local_indices

    def __len__(self) -> int:
        return len(self._local_indices)
