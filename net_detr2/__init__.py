"""net_detr2: a detectron2-compatible object-detection research codebase."""

from __future__ import annotations

__version__ = "0.1.0"
