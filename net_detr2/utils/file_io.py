"""The project's iopath ``PathManager``: local files only (nothing is ever downloaded; see README "Safety")."""

from __future__ import annotations

from iopath.common.file_io import PathManager as _PathManagerBase

__all__ = ["PathManager"]

PathManager = _PathManagerBase()
