"""Checkpointing: atomic, finite-only saves and safe, checked loading of ``.pth``/``.pkl`` weights."""

from __future__ import annotations

from .atomic_io import atomic_write, remove_stale_temp_files
from .detection_checkpoint import MAX_ITERATION, DetectionCheckpointer, register_state_dict_converter
from .safe_load import CheckpointLoadError, load_pkl, load_pth

__all__ = [
    "DetectionCheckpointer",
    "register_state_dict_converter",
    "MAX_ITERATION",
    "CheckpointLoadError",
    "atomic_write",
    "remove_stale_temp_files",
    "load_pkl",
    "load_pth",
]
