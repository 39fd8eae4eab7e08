"""Checkpointing: atomic saves and safe loading of ``.pth``/``.pkl`` weights."""

from .detection_checkpoint import DetectionCheckpointer, register_state_dict_converter
from .safe_load import CheckpointLoadError, atomic_write, load_pkl, load_pth, remove_stale_temp_files

__all__ = [
    "DetectionCheckpointer",
    "register_state_dict_converter",
    "CheckpointLoadError",
    "atomic_write",
    "load_pkl",
    "load_pth",
    "remove_stale_temp_files",
]
