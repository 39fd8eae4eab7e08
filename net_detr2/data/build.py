"""Dataset dicts from registered names, and the train/test data loaders (batches are ``list[dict]``)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.utils.data as torchdata

from net_detr2.structures import BoxMode
from net_detr2.utils.comm import get_rank, get_world_size, shared_random_seed

from .catalog import DatasetCatalog, MetadataCatalog
from .common import DatasetFromList, MapDataset
from .samplers import GroupedBatchSampler, InferenceSampler, TrainingSampler, aspect_ratio_group_ids

__all__ = [
    "get_detection_dataset_dicts",
    "sanitize_dataset_boxes",
    "filter_images_with_only_crowd_annotations",
    "build_detection_train_loader",
    "build_detection_test_loader",
    "trivial_batch_collator",
    "SeededBatchSampler",
    "TrainingDataLoader",
]

logger = logging.getLogger(__name__)


def trivial_batch_collator(batch: list) -> list:
    """Batches stay ``list[dict]``."""
    return batch


def sanitize_dataset_boxes(dataset_dicts: list[dict], dataset_name: str = "") -> dict[str, int]:
    """Clip every annotation box to its image and drop boxes of non-positive size, in place.

    Boxes are compared in XYXY_ABS; a clipped box is written back in its own ``bbox_mode``. Images without
    ``height``/``width`` are left alone. Returns and logs the counts ``{"boxes", "clipped", "dropped"}``.
    """
    refs: list[tuple[int, int]] = []
    raw, modes, sizes = [], [], []
    for i, d in enumerate(dataset_dicts):
        if "height" not in d or "width" not in d:
            continue
        for j, a in enumerate(d.get("annotations", [])):
            refs.append((i, j))
            raw.append(a["bbox"])
            modes.append(int(a["bbox_mode"]))
            sizes.append((d["height"], d["width"]))
    counts = {"boxes": len(refs), "clipped": 0, "dropped": 0}
    if not refs:
        return counts
    raw_a = np.asarray(raw, dtype=np.float64).reshape(-1, 4)
    modes_a = np.asarray(modes)
    if np.isin(modes_a, [BoxMode.XYXY_REL, BoxMode.XYWH_REL]).any():
        raise ValueError(f"Dataset '{dataset_name}': relative bbox modes are not supported in dataset dicts")
    xyxy = raw_a.copy()
    wh = modes_a == BoxMode.XYWH_ABS
    xyxy[wh, 2:] = raw_a[wh, :2] + raw_a[wh, 2:]
    hw = np.asarray(sizes, dtype=np.float64)
    clipped = xyxy.copy()
    clipped[:, 0::2] = np.clip(clipped[:, 0::2], 0, hw[:, 1:2])
    clipped[:, 1::2] = np.clip(clipped[:, 1::2], 0, hw[:, 0:1])
    valid = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    changed = valid & (np.abs(clipped - xyxy).max(axis=1) > 1e-6)
    counts["clipped"] = int(changed.sum())
    counts["dropped"] = int((~valid).sum())
    if counts["clipped"]:
        for k in np.nonzero(changed)[0]:
            i, j = refs[k]
            b = clipped[k]
            a = dataset_dicts[i]["annotations"][j]
            a["bbox"] = (
                [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] if wh[k] else [float(v) for v in b]
            )
    if counts["dropped"]:
        drop: dict[int, set] = {}
        for k in np.nonzero(~valid)[0]:
            i, j = refs[k]
            drop.setdefault(i, set()).add(j)
        for i, js in drop.items():
            annos = dataset_dicts[i]["annotations"]
            dataset_dicts[i]["annotations"] = [a for j, a in enumerate(annos) if j not in js]
    if counts["clipped"] or counts["dropped"]:
        logger.warning(
            "Dataset '%s': of %d boxes, %d were clipped to their image and %d dropped (zero size or outside the image)",
            dataset_name,
            counts["boxes"],
            counts["clipped"],
            counts["dropped"],
        )
    return counts


def filter_images_with_only_crowd_annotations(dataset_dicts: list[dict], dataset_name: str = "") -> list[dict]:
    """Drop images that have no non-crowd annotation (useless for training)."""
    num_before = len(dataset_dicts)
    out = [d for d in dataset_dicts if any(a.get("iscrowd", 0) == 0 for a in d.get("annotations", []))]
    if num_before != len(out):
        logger.info(
            "Dataset '%s': removed %d images with no usable annotations; %d images left",
            dataset_name,
            num_before - len(out),
            len(out),
        )
    return out


def get_detection_dataset_dicts(
    names: str | Sequence[str],
    filter_empty: bool = True,
    proposal_files=None,
    check_consistency: bool = True,
) -> list[dict]:
    """Load and concatenate the registered datasets ``names``.

    Boxes are clipped to their image / dropped when degenerate (counted and logged per dataset); with
    ``filter_empty`` images without non-crowd annotations are removed. With several names,
    ``check_consistency`` requires their ``thing_classes`` to agree.
    """
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise ValueError("get_detection_dataset_dicts: no dataset names given")
    if proposal_files:
        raise NotImplementedError("precomputed proposals are not supported")
    all_dicts = []
    for name in names:
        dicts = DatasetCatalog.get(name)
        if isinstance(dicts, torchdata.Dataset):
            raise TypeError(f"Dataset '{name}' returned a torch Dataset; expected list[dict]")
        if len(dicts) == 0:
            raise ValueError(f"Dataset '{name}' is empty!")
        if dicts and "annotations" in dicts[0]:
            sanitize_dataset_boxes(dicts, name)
        if filter_empty and dicts and "annotations" in dicts[0]:
            dicts = filter_images_with_only_crowd_annotations(dicts, name)
        all_dicts.append(dicts)
    if check_consistency and len(names) > 1:
        classes = [MetadataCatalog.get(n).get("thing_classes") for n in names]
        for n, c in zip(names[1:], classes[1:]):
            if c is not None and classes[0] is not None and list(c) != list(classes[0]):
                raise ValueError(f"Datasets '{names[0]}' and '{n}' have different thing_classes: {classes[0]} vs {c}")
    dicts = list(itertools.chain.from_iterable(all_dicts))
    if len(dicts) == 0:
        raise ValueError(f"No valid data found in {','.join(names)} (all images filtered out?)")
    return dicts


def _sample_seed(seed: int, rank: int, iteration: int, slot: int) -> int:
    """A seed for the ``slot``-th sample of ``iteration`` on ``rank``; different streams for different keys."""
    return int(np.random.SeedSequence([seed, rank, iteration, slot]).generate_state(1)[0])


class SeededBatchSampler:
    """Wraps a batch sampler: yields, for iteration ``it`` (from ``start_iter``), the list of
    ``(index, sample_seed)`` pairs. The first ``start_iter`` batches are skipped by advancing the index
    stream only — no image is read.

    ``seed`` seeds the per-sample augmentation and, when the wrapped stream exposes a settable ``seed``
    (`TrainingSampler`), its order too: setting it here sets both.
    """

    def __init__(self, batch_sampler, seed: int, rank: int = 0, start_iter: int = 0):
        if start_iter < 0:
            raise ValueError(f"start_iter must be >= 0, got {start_iter}")
        self.batch_sampler = batch_sampler
        self._seed = int(seed)
        self.rank = int(rank)
        self.start_iter = int(start_iter)

    @property
    def seed(self) -> int:
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        index_sampler = getattr(self.batch_sampler, "sampler", None)
        if int(value) != self._seed and index_sampler is not None:
            try:
                index_sampler.seed = int(value)
            except AttributeError as e:
                raise ValueError(f"the index sampler {type(index_sampler).__name__} has no settable 'seed'") from e
        self._seed = int(value)

    def __iter__(self):
        batches = itertools.islice(iter(self.batch_sampler), self.start_iter, None)
        for it, batch in enumerate(batches, start=self.start_iter):
            yield [(int(idx), _sample_seed(self._seed, self.rank, it, j)) for j, idx in enumerate(batch)]


class TrainingDataLoader(torchdata.DataLoader):
    """The infinite training loader of `build_detection_train_loader`, whose place in its batch stream can be
    saved and restored: ``state_dict()`` is ``{"seed", "next_batch"}`` (the stream's seed and the number of batches
    handed out so far); ``load_state_dict`` before iterating makes the loader continue with exactly the batches
    (order and augmentation) an uninterrupted run would have seen, whatever ``num_workers`` is. The trainer
    saves it in every checkpoint."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._next_batch = self.batch_sampler.start_iter
        self._started = False

    def __iter__(self):
        self._started = True
        for batch in super().__iter__():
            self._next_batch += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.batch_sampler.seed, "next_batch": self._next_batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if self._started:
            raise RuntimeError("TrainingDataLoader.load_state_dict must be called before iterating the loader")
        seed, next_batch = state["seed"], state["next_batch"]
        for key, value in (("seed", seed), ("next_batch", next_batch)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"TrainingDataLoader state: '{key}' must be an integer >= 0, got {value!r}")
        self.batch_sampler.seed = seed
        self.batch_sampler.start_iter = next_batch
        self._next_batch = next_batch
        self.generator.manual_seed(seed)


def _worker_init_reset_seed(worker_id: int) -> None:
    # every sample is seeded by MapDataset; this only keeps stray torch randomness distinct per worker
    torch.manual_seed(torch.initial_seed() % 2**31 + worker_id)


def build_detection_train_loader(
    dataset,
    *,
    mapper: Callable,
    total_batch_size: int,
    sampler=None,
    aspect_ratio_grouping: bool = True,
    num_workers: int = 0,
    seed: int | None = None,
    start_iter: int = 0,
    collate_fn: Callable | None = None,
    skip_unreadable: bool = False,
    serialize: bool = True,
):
    """An infinite loader of training batches (``list`` of mapped dicts) for this rank.

    Args:
        dataset: ``list[dict]`` (dataset dicts) or registered dataset name(s).
        mapper: called on each dict (e.g. `DatasetMapper`).
        total_batch_size: images per iteration over all ranks; each rank gets ``total / world_size``.
        sampler: an index sampler; default ``TrainingSampler(len(dataset), seed=seed)``.
        aspect_ratio_grouping: batch only images of the same orientation (from the dicts' height/width).
        num_workers: loader processes; the batch order and content do not depend on it.
        seed: seeds the default sampler and the per-sample augmentation; None = a seed shared by all ranks,
            drawn from numpy's global generator (so it follows ``train.seed``, which seeds that generator).
        start_iter: skip the batches of iterations ``0..start_iter-1`` (without loading them), so a resumed
            run sees the same data as an uninterrupted one.
        skip_unreadable: replace unreadable images by the next one (counted, logged) instead of raising.
    """
    if isinstance(dataset, str) or (isinstance(dataset, (list, tuple)) and dataset and isinstance(dataset[0], str)):
        dataset = get_detection_dataset_dicts(dataset)
    world_size, rank = get_world_size(), get_rank()
    if total_batch_size <= 0 or total_batch_size % world_size != 0:
        raise ValueError(
            f"total_batch_size ({total_batch_size}) must be a positive multiple of the number of "
            f"processes ({world_size})"
        )
    batch_size = total_batch_size // world_size
    if seed is None:
        seed = sampler.seed if sampler is not None and hasattr(sampler, "seed") else shared_random_seed()
    if sampler is None:
        sampler = TrainingSampler(len(dataset), shuffle=True, seed=seed)
    group_ids = aspect_ratio_group_ids(dataset) if aspect_ratio_grouping else None
    batch_sampler = SeededBatchSampler(GroupedBatchSampler(sampler, group_ids, batch_size), seed, rank, start_iter)
    ds = MapDataset(DatasetFromList(dataset, copy=False, serialize=serialize), mapper, skip_unreadable=skip_unreadable)
    return TrainingDataLoader(
        ds,
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        collate_fn=trivial_batch_collator if collate_fn is None else collate_fn,
        worker_init_fn=_worker_init_reset_seed if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
        # the workers' base seed comes from the data seed, not from the global torch generator, which
        # belongs to the model (RoI sampling): creating the iterator must not move it
        generator=torch.Generator().manual_seed(seed),
    )


def build_detection_test_loader(
    dataset,
    *,
    mapper: Callable,
    sampler=None,
    batch_size: int = 1,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
):
    """A one-pass loader over ``dataset`` (``list[dict]`` or registered name(s), loaded with
    ``filter_empty=False``); with several processes each gets a contiguous shard (`InferenceSampler`), so every
    image is seen exactly once overall. Batches are ``list[dict]`` in dataset order."""
    if isinstance(dataset, str) or (isinstance(dataset, (list, tuple)) and dataset and isinstance(dataset[0], str)):
        dataset = get_detection_dataset_dicts(dataset, filter_empty=False)
    if sampler is None:
        sampler = InferenceSampler(len(dataset))
    batch_sampler = torchdata.BatchSampler(sampler, batch_size, drop_last=False)
    ds = MapDataset(DatasetFromList(dataset, copy=False), mapper)
    return torchdata.DataLoader(
        ds,
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        collate_fn=trivial_batch_collator if collate_fn is None else collate_fn,
    )
