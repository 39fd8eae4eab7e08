"""Checkpointing: atomic saves and safe loading of ``.pth``/``.pkl`` weights."""

from __future__ import annotations

from .detection_checkpoint import DetectionCheckpointer, register_state_dict_converter
from .safe_load import CheckpointLoadError, atomic_write, load_pkl, load_pth

__all__ = [
    "DetectionCheckpointer",
    "register_state_dict_converter",
    "CheckpointLoadError",
    "atomic_write",
    "load_pkl",
    "load_pth",
]
