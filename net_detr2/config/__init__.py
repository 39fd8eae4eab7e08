"""LazyConfig system: ``LazyCall``/``L`` to describe objects, ``instantiate`` to build them,
``LazyConfig`` to load/save/override config files."""

from __future__ import annotations

from .instantiate import ConfigKeyError, InstantiationError, instantiate, locate
from .lazy import LazyCall, LazyConfig, default_output_dir

L = LazyCall

__all__ = [
    "LazyCall",
    "L",
    "LazyConfig",
    "default_output_dir",
    "instantiate",
    "locate",
    "ConfigKeyError",
    "InstantiationError",
]
