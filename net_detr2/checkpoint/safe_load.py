"""Loading checkpoint files without executing code from them.

``.pth``: ``torch.load(weights_only=True)``. ``.pkl`` (detectron2 model zoo, pickled
``{"model": {name: ndarray}, "__author__": ...}``): a restricted unpickler that only rebuilds
containers, numbers, strings and numpy arrays/dtypes/scalars.
"""

from __future__ import annotations

import logging
import os
import pickle
from typing import Any

import torch

__all__ = ["CheckpointLoadError", "load_pkl", "load_pth", "atomic_write", "remove_stale_temp_files"]


class CheckpointLoadError(RuntimeError):
    """A checkpoint file that cannot be read (corrupt, truncated, or containing disallowed objects)."""


# (module, name) pairs a numpy/py2/py3 pickle of arrays needs. Everything else is refused.
_ALLOWED_GLOBALS: set[tuple[str, str]] = {
    ("collections", "OrderedDict"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "tuple"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "complex"),
    ("__builtin__", "set"),
    ("__builtin__", "frozenset"),
    ("_codecs", "encode"),  # py2 byte strings pickled by py3 (protocol <= 2)
    ("copy_reg", "_reconstructor"),
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED_GLOBALS |= {(_mod, "_reconstruct"), (_mod, "scalar")}
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED_GLOBALS.add((_mod, "_frombuffer"))
_ALLOWED_GLOBALS |= {("numpy", "ndarray"), ("numpy", "dtype")}
# numpy >= 1.25 pickles dtypes as numpy.dtypes.<Kind>DType classes.
_ALLOWED_DTYPE_MODULE = "numpy.dtypes"


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, filename: str):
        super().__init__(file, encoding="latin1")
        self._filename = filename

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS or (module == _ALLOWED_DTYPE_MODULE and name.endswith("DType")):
            return super().find_class(module, name)
        if module == "copy_reg" and name == "_reconstructor":  # pragma: no cover - py2 pickles
            return super().find_class("copyreg", "_reconstructor")
        raise CheckpointLoadError(
            f"Refusing to load {self._filename}: it references the global '{module}.{name}', which is not an "
            "allowed type (only dicts, lists, tuples, numbers, strings and numpy arrays may appear in a .pkl "
            "checkpoint). The file may be malicious; convert it to a plain state dict if you trust it."
        )

    def persistent_load(self, pid):
        raise CheckpointLoadError(f"Refusing to load {self._filename}: persistent id {pid!r} is not allowed")


def load_pkl(filename: str) -> Any:
    """Unpickle ``filename`` allowing only data (no code). Raises ``CheckpointLoadError`` naming the file."""
    try:
        with open(filename, "rb") as f:
            return _RestrictedUnpickler(f, filename).load()
    except CheckpointLoadError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise CheckpointLoadError(
            f"Cannot read checkpoint {filename}: corrupt or truncated pickle ({type(e).__name__}: {e})"
        ) from e


def load_pth(filename: str) -> Any:
    """``torch.load(filename, weights_only=True)`` on CPU with errors that name the file."""
    try:
        return torch.load(filename, map_location=torch.device("cpu"), weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        if "weights_only" in msg or "Unsupported global" in msg:
            raise CheckpointLoadError(
                f"Refusing to load {filename}: it contains objects other than tensors and plain data "
                f"(torch.load(weights_only=True) says: {msg.splitlines()[0] if msg else e!r})"
            ) from e
        raise CheckpointLoadError(f"Cannot read checkpoint {filename}: corrupt or truncated ({e})") from e
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise CheckpointLoadError(
            f"Cannot read checkpoint {filename}: corrupt or truncated ({type(e).__name__}: {e})"
        ) from e


def atomic_write(path: str, write_fn, mode: str = "wb") -> None:
    """Write ``path`` so that readers see either the old or the complete new content.

    ``write_fn(f)`` writes into a temporary file in the same directory, which is flushed,
    fsync'ed and renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows). On any
    error the temporary file is removed and ``path`` is untouched.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp.{os.path.basename(path)}.{os.getpid()}")
    try:
        with open(tmp, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def remove_stale_temp_files(directory: str) -> list[str]:
    """Delete the temporary files that interrupted saves left in ``directory`` (``.tmp.<name>.<pid>`` of
    `atomic_write`, ``.tmp-<name>*`` of ``LazyConfig.save``); returns their paths.

    Call it when a run starts in ``directory``, before anything of this run saves there.
    """
    if not os.path.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if (name.startswith(".tmp.") or name.startswith(".tmp-")) and os.path.isfile(path):
            os.remove(path)
            removed.append(path)
    if removed:
        logging.getLogger(__name__).info(f"Removed {len(removed)} temporary files of interrupted saves: {removed}")
    return removed
