"""Loading checkpoint files without executing code from them, and without letting them exhaust memory.

``.pth``: ``torch.load(weights_only=True)``. ``.pkl`` (detectron2 model zoo, pickled
``{"model": {name: ndarray}, "__author__": ...}``): a restricted unpickler that only rebuilds
containers, numbers, strings and numpy arrays/dtypes/scalars, and bounds what it builds:

* before anything is built, a scan of the opcodes checks that every length the file declares is
  present in the file and that memo indices stay below the number of opcodes (a 30-byte file cannot
  make the unpickler reserve gigabytes for a string or its memo table);
* every allowed constructor is called through a guard that charges the bytes it would allocate to a
  budget of ``4 x file size + 1 MiB`` (a real checkpoint builds each array once, at most twice for
  Python-2 pickles): ``bytearray(10**11)`` or an ``ndarray`` of 10^11 elements is refused before
  allocation, naming the file;
* an array's raw data must hold exactly ``elements x itemsize`` bytes (object arrays: a list of exactly
  ``elements`` items), so an array is never larger than the data the file carries for it.
"""

from __future__ import annotations

import codecs
import copyreg
import math
import mmap
import os
import pickle
import pickletools
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

try:  # numpy >= 2 (numpy.core is a deprecated alias there)
    from numpy._core import multiarray as _np_multiarray
    from numpy._core import numeric as _np_numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _np_multiarray
    from numpy.core import numeric as _np_numeric

__all__ = ["CheckpointLoadError", "load_pkl", "load_pth"]


class CheckpointLoadError(RuntimeError):
    """A checkpoint file that cannot be read (corrupt, truncated, or containing disallowed objects)."""


# What a pickle may build, relative to its size: arrays are built once from the file's bytes (twice for
# Python-2 pickles: latin-1 text -> bytes -> array); the slack covers dtypes, scalars and small containers.
_BUDGET_FACTOR = 4
_BUDGET_SLACK = 1 << 20
# Containers are charged one pointer per item (what list(x)/dict(x) allocate, before the items themselves).
_POINTER_BYTES = 8
# Checkpoints are dicts of arrays a few levels deep; deeper nesting is refused rather than recursed into.
_MAX_DEPTH = 64

_MEMO_PUT_OPCODES = {"PUT", "BINPUT", "LONG_BINPUT"}
_LATIN1_NAMES = {"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "iso_8859_1", "l1"}


class _Guard:
    """Per-file state of one restricted unpickling: the file name (for messages) and the allocation budget."""

    def __init__(self, filename: str, file_size: int):
        self.filename = filename
        self.limit = _BUDGET_FACTOR * file_size + _BUDGET_SLACK
        self.file_size = file_size
        self.used = 0

    def refuse(self, what: str) -> CheckpointLoadError:
        return CheckpointLoadError(f"Refusing to load {self.filename}: {what}")

    def charge(self, nbytes: int, what: str) -> None:
        """Account for ``nbytes`` about to be allocated; refuse (before allocating) past the budget."""
        self.used += int(nbytes)
        if self.used > self.limit:
            raise self.refuse(
                f"it asks for {what} ({nbytes:,} bytes), more than a {self.file_size:,}-byte pickle can hold "
                f"(at most {self.limit:,} bytes may be built from it). The file is corrupt or crafted"
            )


def _sized(guard: _Guard, value: Any, what: str) -> int:
    try:
        return len(value)
    except TypeError:
        raise guard.refuse(f"{what} got a {type(value).__name__}, not a sized container") from None


def _count_elements(guard: _Guard, shape: Any, what: str) -> int:
    """Number of elements of an array ``shape`` (a tuple of non-negative ints), in Python ints (no overflow)."""
    if not isinstance(shape, tuple) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise guard.refuse(f"{what} has an invalid shape {shape!r}")
    return math.prod(int(d) for d in shape)


def _dtype(guard: _Guard, dtype: Any, what: str) -> np.dtype:
    try:
        return np.dtype(dtype)
    except (TypeError, ValueError) as e:
        raise guard.refuse(f"{what} has an invalid dtype {dtype!r} ({e})") from None


def _raw_length(raw: Any) -> int | None:
    """Bytes in an array's raw data (bytes, bytearray, latin-1 str of Python-2 pickles), None for other types."""
    if isinstance(raw, (bytes, bytearray, str)):
        return len(raw)
    return None


class _GuardedArray(np.ndarray):
    """The class arrays are rebuilt as, so that their ``__setstate__`` (pickle's BUILD) is checked first.

    Converted back to plain ``np.ndarray`` views once the whole file is read (:func:`_plain`).
    """

    _guard: _Guard | None = None

    def __setstate__(self, state):
        guard = self._guard
        if guard is None:  # only arrays made by _guarded_reconstruct may be rebuilt
            raise CheckpointLoadError("Refusing to rebuild an array outside a checked unpickling")
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise guard.refuse(f"an array's state is malformed ({type(state).__name__})")
        shape, dtype, _fortran, raw = state[-4:]
        dtype = _dtype(guard, dtype, "an array")
        n = _count_elements(guard, shape, "an array")
        if dtype.hasobject:
            if not isinstance(raw, list) or len(raw) != n:
                raise guard.refuse(f"an object array of shape {shape} comes with {type(raw).__name__} data")
            guard.charge(n * _POINTER_BYTES, f"an object array of shape {shape}")
        else:
            nbytes = n * dtype.itemsize
            length = _raw_length(raw)
            if length != nbytes:
                raise guard.refuse(
                    f"an array of shape {shape} and dtype {dtype} needs {nbytes:,} bytes of data, the file "
                    f"gives {'a ' + type(raw).__name__ if length is None else f'{length:,} bytes'}"
                )
            guard.charge(nbytes, f"an array of shape {shape} and dtype {dtype}")
        super().__setstate__(state)


class _NdarrayMarker:
    """Stands for ``numpy.ndarray`` in a pickle: accepted as ``_reconstruct``'s class, never called itself."""

    def __init__(self, guard: _Guard):
        self._guard = guard

    def __call__(self, *args, **kwargs):
        raise self._guard.refuse("it calls numpy.ndarray(...) directly (numpy never pickles arrays that way)")


def _guarded_callables(guard: _Guard) -> dict[tuple[str, str], Any]:
    """The allowed globals, each wrapped so that it charges what it allocates to ``guard`` before doing it."""
    ndarray_marker = _NdarrayMarker(guard)

    def container(cls, name):
        def build(*args):
            if len(args) > 1:
                raise guard.refuse(f"{name}() called with {len(args)} arguments")
            if args:
                guard.charge(_sized(guard, args[0], f"{name}()") * _POINTER_BYTES, f"a {name} of {len(args[0])} items")
            return cls(*args)

        build.wrapped_class = cls
        return build

    def byte_buffer(cls):
        def build(source=b"", *args):
            name = cls.__name__
            if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
                n = int(source)
                what = f"{name}({n:,})"
            else:  # a str is encoded (latin-1 for Python 2 pickles): at most 4 bytes per character
                n = _sized(guard, source, f"{name}()") * (4 if isinstance(source, str) else 1)
                what = f"a {name} of {n:,} bytes"
            guard.charge(n, what)
            return cls(source, *args)

        return build

    def guarded_complex(*args):
        if any(isinstance(a, (str, bytes)) and len(a) > 64 for a in args):
            raise guard.refuse("complex() of a long string")
        return complex(*args)

    def guarded_encode(obj, encoding="utf-8", errors="strict"):
        if not isinstance(obj, str) or not isinstance(encoding, str) or encoding.lower() not in _LATIN1_NAMES:
            raise guard.refuse(
                f"_codecs.encode is only allowed for latin-1 text (Python 2 byte strings), got {encoding!r}"
            )
        guard.charge(len(obj), "a byte string")
        return codecs.encode(obj, encoding, errors)

    def guarded_reconstruct(subtype, shape, dtype):
        if subtype is not ndarray_marker:
            raise guard.refuse(f"numpy _reconstruct of {subtype!r} (only numpy.ndarray is allowed)")
        n = _count_elements(guard, shape, "an array")
        dt = _dtype(guard, dtype, "an array")
        guard.charge(n * max(dt.itemsize, 1), f"an array of shape {shape}")
        arr = _np_multiarray._reconstruct(_GuardedArray, shape, dtype)
        arr._guard = guard
        return arr

    def guarded_scalar(dtype, obj=None):
        dt = _dtype(guard, dtype, "a numpy scalar")
        if not dt.hasobject:
            length = _raw_length(obj)
            if length != dt.itemsize:
                raise guard.refuse(f"a numpy {dt} scalar needs {dt.itemsize} bytes, the file gives {length}")
            guard.charge(dt.itemsize, f"a numpy {dt} scalar")
        return _np_multiarray.scalar(dt, obj) if obj is not None else _np_multiarray.scalar(dt)

    def guarded_frombuffer(buf, dtype, shape, order):
        dt = _dtype(guard, dtype, "an array")
        n = _count_elements(guard, shape, "an array")
        try:
            nbytes = memoryview(buf).nbytes
        except TypeError:
            raise guard.refuse(f"an array's buffer is a {type(buf).__name__}") from None
        if dt.hasobject or n * dt.itemsize != nbytes:
            raise guard.refuse(f"an array of shape {shape} and dtype {dt} comes with {nbytes:,} bytes")
        return _np_numeric._frombuffer(buf, dt, shape, order)

    def guarded_reconstructor(cls, base, state):
        # copyreg._reconstructor(cls, base, state) is base.__new__(cls, state) + base.__init__(obj, state)
        cls = getattr(cls, "wrapped_class", cls)
        base = getattr(base, "wrapped_class", base)
        if base not in (dict, list, set, frozenset, tuple, OrderedDict) or not issubclass(cls, base):
            raise guard.refuse(f"copy_reg._reconstructor of {cls!r} on {base!r}")
        if state is not None:
            guard.charge(_sized(guard, state, "_reconstructor") * _POINTER_BYTES, f"a {base.__name__}")
        return copyreg._reconstructor(cls, base, state)

    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): container(OrderedDict, "OrderedDict"),
        ("_codecs", "encode"): guarded_encode,  # py2 byte strings pickled by py3 (protocol <= 2)
        ("copy_reg", "_reconstructor"): guarded_reconstructor,
        ("copyreg", "_reconstructor"): guarded_reconstructor,
        ("numpy", "ndarray"): ndarray_marker,
        ("numpy", "dtype"): np.dtype,  # building a dtype allocates no array data; arrays check its itemsize
    }
    for module in ("builtins", "__builtin__"):  # protocol <= 2 pickles name the module __builtin__
        for cls in (dict, list, tuple, set, frozenset):
            allowed[(module, cls.__name__)] = container(cls, cls.__name__)
        for cls in (bytes, bytearray):
            allowed[(module, cls.__name__)] = byte_buffer(cls)
        allowed[(module, "complex")] = guarded_complex
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = guarded_reconstruct
        allowed[(module, "scalar")] = guarded_scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(module, "_frombuffer")] = guarded_frombuffer
    return allowed


# numpy >= 1.25 pickles dtypes as numpy.dtypes.<Kind>DType classes.
_ALLOWED_DTYPE_MODULE = "numpy.dtypes"


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, filename: str, guard: _Guard):
        super().__init__(file, encoding="latin1")
        self._filename = filename
        self._allowed = _guarded_callables(guard)

    def find_class(self, module: str, name: str):
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if module == _ALLOWED_DTYPE_MODULE and name.endswith("DType"):
            cls = super().find_class(module, name)
            if isinstance(cls, type) and issubclass(cls, np.dtype):
                return cls
        raise CheckpointLoadError(
            f"Refusing to load {self._filename}: it references the global '{module}.{name}', which is not an "
            "allowed type (only dicts, lists, tuples, numbers, strings and numpy arrays may appear in a .pkl "
            "checkpoint). The file may be malicious; convert it to a plain state dict if you trust it."
        )

    def persistent_load(self, pid):
        raise CheckpointLoadError(f"Refusing to load {self._filename}: persistent id {pid!r} is not allowed")


def _scan_opcodes(data: mmap.mmap, guard: _Guard) -> None:
    """Walk the opcodes without building anything: every declared length must be in the file (pickletools
    reads exactly what an opcode declares and fails when the file is shorter), and memo indices must stay
    below the number of opcodes read so far (the unpickler sizes its memo table by the largest index)."""
    n_ops = 0
    for opcode, arg, pos in pickletools.genops(data):
        if opcode.name in _MEMO_PUT_OPCODES and int(arg) > n_ops:
            raise guard.refuse(f"memo index {arg:,} after {n_ops} opcodes (the file is corrupt or crafted)")
        if opcode.name == "FRAME" and int(arg) > guard.file_size - pos - 9:  # 9: the opcode and its 8-byte length
            raise ValueError(f"a frame of {arg:,} bytes at byte {pos} runs past the end of the file")
        n_ops += 1


def _plain(obj: Any, guard: _Guard, depth: int = 0, seen: set[int] | None = None) -> Any:
    """``obj`` with every ``_GuardedArray`` replaced by a plain ``np.ndarray`` view (containers updated in place)."""
    if isinstance(obj, _GuardedArray):
        return obj.view(np.ndarray)
    if not isinstance(obj, (dict, list, tuple)):
        return obj
    if depth > _MAX_DEPTH:
        raise guard.refuse(f"containers nested more than {_MAX_DEPTH} levels deep")
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return obj
    seen.add(id(obj))
    if isinstance(obj, dict):
        for k, v in obj.items():
            obj[k] = _plain(v, guard, depth + 1, seen)
        return obj
    if isinstance(obj, list):
        obj[:] = [_plain(v, guard, depth + 1, seen) for v in obj]
        return obj
    return type(obj)(_plain(v, guard, depth + 1, seen) for v in obj) if type(obj) is tuple else obj


def load_pkl(filename: str) -> Any:
    """Unpickle ``filename`` allowing only data (no code), within a memory budget derived from its size.

    Raises ``CheckpointLoadError`` naming the file for a corrupt/truncated file, a disallowed global, or
    a request to build more than the file can hold.
    """
    with open(filename, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise CheckpointLoadError(f"Cannot read checkpoint {filename}: corrupt or truncated pickle (empty file)")
        # A read-only map: both passes read the file without holding a second copy of it in memory.
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _load_mapped(filename, data, size)


def _load_mapped(filename: str, data: mmap.mmap, size: int) -> Any:
    guard = _Guard(filename, size)
    try:
        _scan_opcodes(data, guard)
        data.seek(0)
        return _plain(_RestrictedUnpickler(data, filename, guard).load(), guard)
    except CheckpointLoadError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise CheckpointLoadError(
            f"Cannot read checkpoint {filename}: corrupt or truncated pickle ({type(e).__name__}: {e})"
        ) from e
    except (MemoryError, RecursionError, OverflowError) as e:
        raise CheckpointLoadError(f"Refusing to load {filename}: {type(e).__name__} while unpickling") from e


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
        if isinstance(e, (FileNotFoundError, IsADirectoryError)):
            raise
        raise CheckpointLoadError(
            f"Cannot read checkpoint {filename}: corrupt or truncated ({type(e).__name__}: {e})"
        ) from e
