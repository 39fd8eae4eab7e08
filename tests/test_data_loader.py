"""Samplers and loaders: rank partitioning, determinism, resume (start_iter), unreadable images."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch

import net_detr2.data.build as build
from net_detr2.data import DatasetMapper, build_detection_test_loader, build_detection_train_loader
from net_detr2.data.detection_utils import UnreadableImageError
from net_detr2.data.samplers import (
    GroupedBatchSampler,
    InferenceSampler,
    RepeatFactorTrainingSampler,
    TrainingSampler,
)
from net_detr2.structures import BoxMode


def _take(it, n):
    return list(itertools.islice(iter(it), n))


def test_training_sampler_two_ranks_partition_the_global_stream():
    full = _take(TrainingSampler(10, seed=3, rank=0, world_size=1), 40)
    assert sorted(full[:10]) == list(range(10)) and sorted(full[10:20]) == list(range(10))
    assert full[:10] != full[10:20]  # a new permutation every epoch
    r0 = _take(TrainingSampler(10, seed=3, rank=0, world_size=2), 20)
    r1 = _take(TrainingSampler(10, seed=3, rank=1, world_size=2), 20)
    assert r0 == full[0::2] and r1 == full[1::2]
    assert _take(TrainingSampler(5, shuffle=False, seed=0, rank=0, world_size=1), 7) == [0, 1, 2, 3, 4, 0, 1]
    assert _take(TrainingSampler(10, seed=4, rank=0, world_size=1), 10) != full[:10]


def test_inference_sampler_every_image_once_in_contiguous_shards():
    shards = [list(InferenceSampler(11, rank=r, world_size=3)) for r in range(3)]
    assert shards == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    shards = [list(InferenceSampler(2, rank=r, world_size=3)) for r in range(3)]
    assert shards == [[0], [1], []]
    for n, w in [(100, 2), (7, 4), (1, 1)]:
        allidx = sum((list(InferenceSampler(n, rank=r, world_size=w)) for r in range(w)), [])
        assert allidx == list(range(n))


def test_repeat_factor_sampler_frequencies():
    s = RepeatFactorTrainingSampler(torch.tensor([1.0, 2.5, 0.0]), seed=0, rank=0, world_size=1)
    counts = np.bincount(_take(s, 7000), minlength=3)
    assert counts[2] == 0
    assert 2.3 < counts[1] / counts[0] < 2.7
    dicts = [{"annotations": [{"category_id": 0}]}] * 9 + [{"annotations": [{"category_id": 1}]}]
    rf = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(dicts, repeat_thresh=0.5)
    # category 1 is in 10% of the images: sqrt(0.5 / 0.1); category 0 (90%) gets 1
    np.testing.assert_allclose(rf.numpy(), [1.0] * 9 + [np.sqrt(5.0)], rtol=1e-6)


def test_repeat_factors_balance_instance_counts():
    """Classes below the target are repeated to it per epoch (EFPN's TT100K balancing); others stay."""

    def image(*classes):
        return {"annotations": [{"category_id": c} for c in classes]}

    # class 0: 4 instances (one image shared with class 2), class 1: 10, class 2: 80
    dicts = [image(0)] * 3 + [image(0, 2, 2)] + [image(1, 1, 1, 1, 1)] * 2 + [image(2, 2)] * 39
    rf = RepeatFactorTrainingSampler.repeat_factors_from_instance_count(dicts, target_instances=20)
    np.testing.assert_allclose(rf.numpy(), [5.0] * 4 + [2.0] * 2 + [1.0] * 39)
    epoch = _take(RepeatFactorTrainingSampler(rf, seed=0, rank=0, world_size=1), int(rf.sum()))
    seen = np.bincount([a["category_id"] for i in epoch for a in dicts[i]["annotations"]], minlength=3)
    # 0 and 1 reach the target exactly; 2 gains the 4 extra copies of the image it shares with 0
    assert seen.tolist() == [20, 20, 80 + 4 * 2]
    with pytest.raises(ValueError, match="target_instances"):
        RepeatFactorTrainingSampler.repeat_factors_from_instance_count(dicts, target_instances=0)


def test_grouped_batch_sampler_batches_one_orientation():
    group_ids = [0, 1, 0, 1, 1, 0, 0, 1]
    batches = _take(GroupedBatchSampler(iter([0, 1, 2, 3, 4, 5, 6, 7]), group_ids, 2, drop_last=False), 10)
    assert batches == [[0, 2], [1, 3], [5, 6], [4, 7]]


def _fake_dicts(n=13):
    # no files: the mapper below never reads images. Orientation alternates for aspect-ratio grouping.
    return [
        {"file_name": f"img{i}.jpg", "image_id": i, "height": 100, "width": 150 if i % 3 else 80, "annotations": []}
        for i in range(n)
    ]


class _RecordingMapper:
    """Returns the id and a draw from numpy's RNG (stands in for a random augmentation); counts calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, d):
        self.calls += 1
        return {"image_id": d["image_id"], "r": float(np.random.rand())}


def _ids(batch):
    return [(x["image_id"], x["r"]) for x in batch]


def test_train_loader_resume_and_workers_give_the_same_batches():
    dicts = _fake_dicts()
    ref = [
        _ids(b)
        for b in _take(build_detection_train_loader(dicts, mapper=_RecordingMapper(), total_batch_size=4, seed=7), 10)
    ]
    for b in ref:  # aspect-ratio grouping from the dicts' height/width
        assert len({dicts[i]["width"] > 100 for i, _ in b}) == 1
    # same seed -> same batches and the same augmentation draws
    again = [
        _ids(b)
        for b in _take(build_detection_train_loader(dicts, mapper=_RecordingMapper(), total_batch_size=4, seed=7), 10)
    ]
    assert again == ref
    # start_iter=6 continues exactly where an uninterrupted run would be, without mapping iterations 0..5
    mapper = _RecordingMapper()
    resumed = build_detection_train_loader(dicts, mapper=mapper, total_batch_size=4, seed=7, start_iter=6)
    it = iter(resumed)
    first = _ids(next(it))
    assert first == ref[6] and mapper.calls == 4
    assert [_ids(next(it)) for _ in range(3)] == ref[7:10]
    # a worker process maps the same samples with the same random draws
    worker = [
        _ids(b)
        for b in _take(
            build_detection_train_loader(dicts, mapper=_RecordingMapper(), total_batch_size=4, seed=7, num_workers=1), 4
        )
    ]
    assert worker == ref[:4]
    other = [
        _ids(b)
        for b in _take(build_detection_train_loader(dicts, mapper=_RecordingMapper(), total_batch_size=4, seed=8), 10)
    ]
    assert other != ref


def test_train_loader_two_simulated_ranks_split_the_total_batch(monkeypatch):
    dicts = _fake_dicts(10)
    full = [
        [x["image_id"] for x in b]
        for b in _take(
            build_detection_train_loader(
                dicts, mapper=_RecordingMapper(), total_batch_size=4, seed=1, aspect_ratio_grouping=False
            ),
            5,
        )
    ]
    stream = _take(TrainingSampler(10, seed=1, rank=0, world_size=1), 20)
    assert full == [stream[4 * i : 4 * i + 4] for i in range(5)]
    per_rank = []
    for rank in (0, 1):
        monkeypatch.setattr(build, "get_world_size", lambda: 2)
        monkeypatch.setattr(build, "get_rank", lambda r=rank: r)
        sampler = TrainingSampler(10, seed=1, rank=rank, world_size=2)
        loader = build_detection_train_loader(
            dicts, mapper=_RecordingMapper(), total_batch_size=4, seed=1, sampler=sampler, aspect_ratio_grouping=False
        )
        per_rank.append([[x["image_id"] for x in b] for b in _take(loader, 5)])
    for i in range(5):
        assert len(per_rank[0][i]) == 2 and len(per_rank[1][i]) == 2
        assert sorted(per_rank[0][i] + per_rank[1][i]) == sorted(full[i])
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        build_detection_train_loader(dicts, mapper=_RecordingMapper(), total_batch_size=3, seed=1)


def _image_dicts(tmp_path, n=3):
    dicts = []
    for i in range(n):
        p = tmp_path / f"im{i}.png"
        cv2.imwrite(str(p), np.full((20, 30, 3), i * 40, np.uint8))
        dicts.append(
            {
                "file_name": str(p),
                "image_id": i,
                "height": 20,
                "width": 30,
                "annotations": [{"bbox": [1, 1, 5, 5], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0}],
            }
        )
    return dicts


def test_unreadable_images_raise_or_are_skipped(tmp_path):
    dicts = _image_dicts(tmp_path)
    (tmp_path / "im1.png").unlink()
    mapper = DatasetMapper(True, augmentations=[])
    loader = build_detection_train_loader(
        dicts, mapper=mapper, total_batch_size=3, seed=0, sampler=TrainingSampler(3, shuffle=False, seed=0)
    )
    with pytest.raises(UnreadableImageError, match="im1.png"):
        next(iter(loader))
    loader = build_detection_train_loader(
        dicts,
        mapper=mapper,
        total_batch_size=3,
        seed=0,
        skip_unreadable=True,
        sampler=TrainingSampler(3, shuffle=False, seed=0),
    )
    batch = next(iter(loader))
    # im1 is replaced by the next image, deterministically
    assert [x["image_id"] for x in batch] == [0, 2, 2]
    assert loader.dataset.num_skipped == 1


def test_test_loader_keeps_order_and_every_image(tmp_path):
    dicts = _image_dicts(tmp_path, 5)
    loader = build_detection_test_loader(dicts, mapper=DatasetMapper(False, augmentations=[]), batch_size=2)
    batches = list(loader)
    assert [[x["image_id"] for x in b] for b in batches] == [[0, 1], [2, 3], [4]]
    assert batches[0][0]["image"].shape == (3, 20, 30) and "instances" not in batches[0][0]
    assert int(batches[2][0]["image"][0, 0, 0]) == 160
