from __future__ import annotations

from .distributed_sampler import InferenceSampler, RepeatFactorTrainingSampler, TrainingSampler
from .grouped_batch_sampler import GroupedBatchSampler, aspect_ratio_group_ids

__all__ = [
    "TrainingSampler",
    "RepeatFactorTrainingSampler",
    "InferenceSampler",
    "GroupedBatchSampler",
    "aspect_ratio_group_ids",
]
