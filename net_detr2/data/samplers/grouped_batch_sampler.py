"""Batching of an index stream, optionally grouping images of the same aspect-ratio class."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from torch.utils.data.sampler import Sampler

__all__ = ["GroupedBatchSampler", "aspect_ratio_group_ids"]


def aspect_ratio_group_ids(dataset_dicts: Sequence[dict]) -> list[int]:
    """0 for landscape-or-square images (width >= height), 1 for portrait, from the dicts' height/width."""
    ids = []
    for i, d in enumerate(dataset_dicts):
        if "height" not in d or "width" not in d:
            raise KeyError(
                f"aspect-ratio grouping needs 'height' and 'width' in every dataset dict; dict {i} "
                f"({d.get('file_name', '?')}) lacks them (pass aspect_ratio_grouping=False)"
            )
        ids.append(0 if d["width"] >= d["height"] else 1)
    return ids


class GroupedBatchSampler(Sampler):
    """Turn a (possibly infinite) stream of indices into batches of ``batch_size`` indices.

    With ``group_ids`` (one per dataset index), each index goes to its group's bucket and a batch is emitted
    when a bucket is full, so a batch holds one group only. Without, consecutive indices are batched.
    The batches are a deterministic function of the index stream (nothing depends on loading), which makes
    skipping the first N batches cheap and exact.
    """

    def __init__(
        self, sampler: Iterable[int], group_ids: Sequence[int] | None, batch_size: int, drop_last: bool = True
    ):
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"GroupedBatchSampler: batch_size must be a positive int, got {batch_size!r}")
        self.sampler = sampler
        self.group_ids = list(group_ids) if group_ids is not None else None
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        if self.group_ids is None:
            batch: list[int] = []
            for idx in self.sampler:
                batch.append(idx)
                if len(batch) == self.batch_size:
                    yield batch
                    batch = []
            if batch and not self.drop_last:
                yield batch
            return
        buckets: dict[int, list[int]] = {}
        for idx in self.sampler:
            b = buckets.setdefault(self.group_ids[idx], [])
            b.append(idx)
            if len(b) == self.batch_size:
                yield b[:]
                del b[:]
        if not self.drop_last:
            for b in buckets.values():
                if b:
                    yield b
