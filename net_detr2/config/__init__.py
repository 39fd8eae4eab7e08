"""LazyConfig system: ``LazyCall``/``L`` to describe objects, ``instantiate`` to build them,
``LazyConfig`` to load/save/override config files."""

from __future__ import annotations

from .instantiate import ConfigKeyError, InstantiationError, instantiate, locate
from .lazy import LazyCall, LazyConfig

L = LazyCall

__all__ = ["LazyCall", "L", "LazyConfig", "instantiate", "locate", "ConfigKeyError", "InstantiationError"]
