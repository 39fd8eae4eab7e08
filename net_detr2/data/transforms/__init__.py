"""Transforms (deterministic) and augmentations (random, sample a transform); detectron2's API."""

from __future__ import annotations

from .augmentation import *  # noqa: F401,F403
from .augmentation_impl import *  # noqa: F401,F403
from .ssd import *  # noqa: F401,F403
from .transform import *  # noqa: F401,F403
