"""The project's iopath ``PathManager`` (local files; HTTP URLs are cached on first use)."""

from __future__ import annotations

from iopath.common.file_io import HTTPURLHandler
from iopath.common.file_io import PathManager as _PathManagerBase

__all__ = ["PathManager"]

PathManager = _PathManagerBase()
PathManager.register_handler(HTTPURLHandler())
