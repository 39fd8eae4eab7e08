"""The paper's TT100K training protocol (Sec. IV-A, "Implementation Details") on a LazyConfig.

"We augment each class to about 1000 instances by random crops and color jitter owing to uneven numbers
of different classes. Those labels not included in evaluating 45 classes are also used in training for
better generalization."

* **Label set** (``label_set``): "45" trains on the 45 evaluated classes only (the other signs are
  unlabelled, i.e. background); "45+other" (the paper) trains on ``tt100k_train_other``, where every sign
  outside the 45 is a 46th class "other", and drops the "other" detections before evaluation on the 45
  (`EvaluatedClassesOnly`). The paper does not say whether the rare categories were one class or each
  its own; one "other" class gives them the same role (signs, not background) with a class count that
  does not depend on the data files.
* **Class balancing** (``balance_instances``): images are repeated per epoch by
  `RepeatFactorTrainingSampler.repeat_factors_from_instance_count` so that every class has at least about
  ``balance_instances`` instances; each repeat is an independent draw of the augmentations below, so the
  added instances are random crops with colour jitter. Unlike the paper's (offline) copies, the original
  images get the same random augmentations: a sampler cannot tell copies from originals.
* **Augmentations**: the resize to 1400, then a random crop (probability ``crop_prob``, each side 50-100%
  of the resized image, so the object scale is kept) and colour jitter (brightness, contrast, saturation
  each by a factor in ``[1 - jitter, 1 + jitter]``); no flip (mirrored signs change meaning).
"""

from __future__ import annotations

from omegaconf import DictConfig

import net_detr2.data.transforms as T
from net_detr2.config import LazyCall as L
from net_detr2.data import get_detection_dataset_dicts
from net_detr2.data.datasets.tt100k import TT100K_45_CLASSES
from net_detr2.data.samplers import RepeatFactorTrainingSampler
from net_detr2.evaluation.evaluator import DatasetEvaluator

__all__ = ["EvaluatedClassesOnly", "LABEL_SETS", "tt100k_protocol"]

# label set -> (training dataset, number of classes the detector learns)
LABEL_SETS = {
    "45": ("tt100k_train", len(TT100K_45_CLASSES)),
    "45+other": ("tt100k_train_other", len(TT100K_45_CLASSES) + 1),
}


class EvaluatedClassesOnly(DatasetEvaluator):
    """Wrap ``evaluator``: detections of classes ``>= num_classes`` (learnt in training but not evaluated,
    e.g. TT100K's "other") are dropped before it sees them."""

    def __init__(self, evaluator: DatasetEvaluator, num_classes: int):
        if num_classes <= 0:
            raise ValueError(f"EvaluatedClassesOnly: num_classes must be > 0, got {num_classes}")
        self.evaluator = evaluator
        self.num_classes = num_classes

    def reset(self) -> None:
        self.evaluator.reset()

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        kept = []
        for out in outputs:
            inst = out["instances"]
            kept.append({**out, "instances": inst[inst.pred_classes < self.num_classes]})
        self.evaluator.process(inputs, kept)

    def evaluate(self):
        return self.evaluator.evaluate()


def tt100k_protocol(
    *,
    model: DictConfig,
    dataloader: DictConfig,
    label_set: str = "45+other",
    balance_instances: int | None = 1000,
    crop_prob: float = 0.5,
    jitter: float = 0.125,
) -> None:
    """In place: the training data, class count and evaluation of the paper's protocol (module docstring).

    ``dataloader`` is ``configs/common/data/tt100k.py``'s; ``balance_instances=None`` switches balancing
    off, ``crop_prob=0`` and ``jitter=0`` the extra augmentations.
    """
    if label_set not in LABEL_SETS:
        raise ValueError(f"tt100k_protocol: label_set={label_set!r} is not one of {sorted(LABEL_SETS)}")
    if balance_instances is not None and balance_instances <= 0:
        raise ValueError(f"tt100k_protocol: balance_instances must be > 0 or None, got {balance_instances}")
    train_name, num_classes = LABEL_SETS[label_set]
    train = dataloader.train
    train.dataset.names = train_name
    model.roi_heads.num_classes = num_classes
    if num_classes > len(TT100K_45_CLASSES):
        inner = dataloader.evaluator
        inner.dataset_name = "${...test.dataset.names}"  # one level deeper than before
        dataloader.evaluator = L(EvaluatedClassesOnly)(evaluator=inner, num_classes=len(TT100K_45_CLASSES))
    if balance_instances is not None:
        train.sampler = L(RepeatFactorTrainingSampler)(
            repeat_factors=L(RepeatFactorTrainingSampler.repeat_factors_from_instance_count)(
                dataset_dicts=L(get_detection_dataset_dicts)(names=train_name), target_instances=balance_instances
            )
        )
    augs = list(train.mapper.augmentations)
    if crop_prob > 0:
        crop = L(T.RandomCrop)(crop_type="relative_range", crop_size=(0.5, 0.5))
        augs.append(L(T.RandomApply)(tfm_or_aug=crop, prob=crop_prob))
    if jitter > 0:
        lo, hi = 1.0 - jitter, 1.0 + jitter
        augs += [L(cls)(intensity_min=lo, intensity_max=hi) for cls in (T.RandomBrightness, T.RandomContrast)]
        fmt = train.mapper.get("image_format", "BGR")
        augs.append(L(T.RandomSaturation)(intensity_min=lo, intensity_max=hi, image_format=fmt))
    train.mapper.augmentations = augs
