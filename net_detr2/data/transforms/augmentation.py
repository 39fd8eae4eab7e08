"""`Augmentation`: samples a `Transform` from its inputs; `AugInput`: the data the transform is applied to.

Randomness comes from numpy's global RNG (``np.random``) as in detectron2; the data loader seeds it per
sample so that a sample's augmentation depends only on the loader seed and its place in the stream.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from .transform import NoOpTransform, Transform, TransformList

__all__ = ["Augmentation", "AugInput", "AugmentationList", "RandomApply", "apply_augmentations", "StandardAugInput"]


class Augmentation:
    """Base class. Subclasses implement ``get_transform(self, *args) -> Transform``.

    ``input_args`` names the `AugInput` attributes ``get_transform`` needs (default ``("image",)``;
    box-aware augmentations such as SSD's min-IoU crop use ``("image", "boxes")``).
    """

    input_args: tuple[str, ...] = ("image",)

    def _init(self, params: dict | None = None) -> None:
        if params:
            for k, v in params.items():
                if k != "self" and not k.startswith("_"):
                    setattr(self, k, v)

    def get_transform(self, *args) -> Transform:
        raise NotImplementedError

    def __call__(self, aug_input: AugInput) -> Transform:
        """Sample a transform from ``aug_input``, apply it to ``aug_input`` in place, return it."""
        args = []
        for name in self.input_args:
            if not hasattr(aug_input, name):
                raise AttributeError(f"{type(self).__name__} needs '{name}' but the AugInput has no such attribute")
            args.append(getattr(aug_input, name))
        tfm = self.get_transform(*args)
        if not isinstance(tfm, (Transform, TransformList)):
            raise TypeError(f"{type(self).__name__}.get_transform must return a Transform, got {type(tfm)}")
        aug_input.transform(tfm)
        return tfm

    @staticmethod
    def _rand_range(low: float = 1.0, high: float | None = None, size=None):
        """Uniform float in [low, high) (or [0, low) when high is None)."""
        if high is None:
            low, high = 0, low
        if size is None:
            size = []
        return np.random.uniform(low, high, size)

    def __repr__(self) -> str:
        try:
            sig = inspect.signature(self.__init__)
            parts = []
            for name in sig.parameters:
                if hasattr(self, name):
                    parts.append(f"{name}={getattr(self, name)!r}")
            return f"{type(self).__name__}({', '.join(parts)})"
        except (ValueError, TypeError):
            return super().__repr__()

    __str__ = __repr__


class AugInput:
    """The inputs an augmentation sees and transforms: ``image`` (HxW[xC] numpy), optional ``boxes``
    (Nx4 XYXY_ABS float numpy) and ``sem_seg`` (HxW)."""

    def __init__(self, image: np.ndarray, *, boxes: np.ndarray | None = None, sem_seg: np.ndarray | None = None):
        if not isinstance(image, np.ndarray):
            raise TypeError(f"AugInput: image must be a numpy array, got {type(image)}")
        if image.ndim not in (2, 3):
            raise ValueError(f"AugInput: image must be HxW or HxWxC, got shape {image.shape}")
        self.image = image
        self.boxes = boxes
        self.sem_seg = sem_seg

    def transform(self, tfm: Transform) -> None:
        """Apply ``tfm`` in place to every present field."""
        self.image = tfm.apply_image(self.image)
        if self.boxes is not None:
            self.boxes = tfm.apply_box(self.boxes)
        if self.sem_seg is not None:
            self.sem_seg = tfm.apply_segmentation(self.sem_seg)

    def apply_augmentations(self, augmentations: Sequence[Augmentation]) -> TransformList:
        """Apply ``augmentations`` in order; return the composed transform."""
        return AugmentationList(augmentations)(self)


StandardAugInput = AugInput


class AugmentationList(Augmentation):
    """Applies a list of augmentations in order; returns the `TransformList` of what was applied."""

    def __init__(self, augs: Sequence[Augmentation | Transform]):
        super().__init__()
        self.augs = [_as_augmentation(a) for a in augs]

    def __call__(self, aug_input: AugInput) -> TransformList:
        tfms = [aug(aug_input) for aug in self.augs]
        return TransformList(tfms)

    def __repr__(self) -> str:
        return f"AugmentationList[{', '.join(repr(a) for a in self.augs)}]"


class _TransformToAug(Augmentation):
    """A fixed Transform used where an Augmentation is expected."""

    def __init__(self, tfm: Transform):
        self.tfm = tfm

    def get_transform(self, *args):
        return self.tfm


def _as_augmentation(x) -> Augmentation:
    if isinstance(x, Augmentation):
        return x
    if isinstance(x, Transform):
        return _TransformToAug(x)
    raise TypeError(f"expected an Augmentation or a Transform, got {type(x)}: {x!r}")


class RandomApply(Augmentation):
    """Apply ``aug`` with probability ``prob``."""

    def __init__(self, tfm_or_aug, prob: float = 0.5):
        super().__init__()
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"RandomApply: prob must be in [0, 1], got {prob}")
        self.aug = _as_augmentation(tfm_or_aug)
        self.prob = prob
        self.input_args = self.aug.input_args

    def get_transform(self, *args):
        if self._rand_range() < self.prob:
            return self.aug.get_transform(*args)
        return NoOpTransform()


def apply_augmentations(augmentations: Sequence[Augmentation | Transform], inputs: Any):
    """``inputs`` an image (numpy) or an `AugInput`. Returns ``(transformed inputs, TransformList)``."""
    if isinstance(inputs, np.ndarray):
        aug_input = AugInput(inputs)
        tfms = aug_input.apply_augmentations(augmentations)
        return aug_input.image, tfms
    tfms = inputs.apply_augmentations(augmentations)
    return inputs, tfms
