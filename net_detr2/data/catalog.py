"""Global registries of datasets (`DatasetCatalog`) and of their metadata (`MetadataCatalog`).

A dataset is registered as a *function* returning ``list[dict]`` (detectron2's "dataset dicts"), so
registering is free and the files are only read when the dataset is asked for.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections import UserDict
from collections.abc import Callable
from typing import Any

__all__ = ["DatasetCatalog", "MetadataCatalog", "Metadata"]

logger = logging.getLogger(__name__)


class _DatasetCatalog(UserDict):
    """name -> function returning the dataset's ``list[dict]``."""

    def register(self, name: str, func: Callable[[], list]) -> None:
        """Register ``func`` (no arguments, returns ``list[dict]``) under ``name``.

        Registering a name again with the same loader (the same function code reading the same files, as when
        a config that registers a dataset is loaded twice in one process) does nothing. A *different* loader
        under a taken name raises ``ValueError``: names are global, and silently replacing one would change
        what every config using it trains on.
        """
        if not callable(func):
            raise TypeError(
                f"DatasetCatalog.register('{name}'): expected a callable returning list[dict], got {type(func)}"
            )
        if name in self:
            if _same_loader(self[name], func):
                logger.debug("DatasetCatalog: '%s' registered again with the same loader; kept", name)
                return
            raise ValueError(
                f"DatasetCatalog: dataset '{name}' is already registered with a different loader "
                f"({_describe(self[name])}; new: {_describe(func)}). Register it under another name, or "
                f"DatasetCatalog.remove('{name}') and MetadataCatalog.remove('{name}') first."
            )
        self[name] = func

    def get(self, name: str) -> list:
        """Call the registered function of ``name`` and return its ``list[dict]``."""
        try:
            func = self[name]
        except KeyError as e:
            raise KeyError(
                f"Dataset '{name}' is not registered! Available datasets are: {', '.join(sorted(self.keys()))}"
            ) from e
        return func()

    def list(self) -> list[str]:
        """Names of all registered datasets."""
        return list(self.keys())

    def remove(self, name: str) -> None:
        """Forget a registration (mainly for tests)."""
        self.pop(name)

    def __str__(self) -> str:
        return f"DatasetCatalog(registered datasets: {', '.join(self.keys())})"

    __repr__ = __str__


def _same_value(a: Any, b: Any, depth: int) -> bool:
    if a is b:
        return True
    if callable(a) and callable(b):
        return _same_loader(a, b, depth)
    try:
        return bool(a == b)
    except Exception:
        return False


def _same_loader(a: Callable, b: Callable, depth: int = 4) -> bool:
    """Whether two dataset loaders do the same: the same function code with equal defaults and equal captured
    values (closures, ``functools.partial`` arguments, bound objects), compared a few levels deep."""
    if a is b:
        return True
    if depth <= 0:
        return False
    if isinstance(a, functools.partial) and isinstance(b, functools.partial):
        return (
            _same_value(a.func, b.func, depth - 1)
            and len(a.args) == len(b.args)
            and all(_same_value(x, y, depth - 1) for x, y in zip(a.args, b.args))
            and a.keywords.keys() == b.keywords.keys()
            and all(_same_value(a.keywords[k], b.keywords[k], depth - 1) for k in a.keywords)
        )
    if inspect.ismethod(a) and inspect.ismethod(b):
        return a.__func__ is b.__func__ and _same_value(a.__self__, b.__self__, depth - 1)
    if not (inspect.isfunction(a) and inspect.isfunction(b)) or a.__code__ != b.__code__:
        return False
    if not _same_value(a.__defaults__, b.__defaults__, depth - 1):
        return False
    cells_a, cells_b = a.__closure__ or (), b.__closure__ or ()
    try:
        return all(_same_value(x.cell_contents, y.cell_contents, depth - 1) for x, y in zip(cells_a, cells_b))
    except ValueError:  # an empty cell
        return False


def _describe(func: Callable) -> str:
    """``name at file:line`` and the plain values it captured (the files it reads), for messages."""
    name = getattr(func, "__qualname__", type(func).__name__)
    code = getattr(func, "__code__", None)
    if code is None:
        return name
    captured = []
    for var, cell in zip(code.co_freevars, getattr(func, "__closure__", None) or ()):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            captured.append(f"{var}={value!r}")
    return f"{name} at {code.co_filename}:{code.co_firstlineno}" + (f" with {', '.join(captured)}" if captured else "")


DatasetCatalog = _DatasetCatalog()


class Metadata:
    """Free-form attributes of one dataset (``thing_classes``, ``evaluator_type``, ``json_file``, ...).

    An attribute can be set once; setting it again to a *different* value raises, because two parts of the
    code disagreeing about e.g. the class names is always a bug. A missing attribute raises an
    AttributeError listing the ones that exist.
    """

    name: str = "N/A"

    def __init__(self, **kwargs: Any):
        for k, v in kwargs.items():
            setattr(self, k, v)

    def __getattr__(self, key: str) -> Any:
        # only called when normal lookup fails
        if key.startswith("__"):
            raise AttributeError(key)
        raise AttributeError(
            f"Attribute '{key}' does not exist in the metadata of dataset '{self.name}'. "
            f"Available keys are {list(self.__dict__.keys())}."
        )

    def __setattr__(self, key: str, val: Any) -> None:
        try:
            oldval = self.__dict__[key]
        except KeyError:
            object.__setattr__(self, key, val)
            return
        if oldval != val:
            raise AssertionError(
                f"Attribute '{key}' in the metadata of '{self.name}' cannot be set to a different value!\n"
                f"{oldval} != {val}"
            )

    def as_dict(self) -> dict:
        """A shallow copy of all attributes."""
        return dict(self.__dict__)

    def set(self, **kwargs: Any) -> Metadata:
        """Set several attributes; returns self."""
        for k, v in kwargs.items():
            setattr(self, k, v)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        """The attribute, or ``default`` when missing."""
        return self.__dict__.get(key, default)

    def __repr__(self) -> str:
        return f"Metadata({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


class _MetadataCatalog(UserDict):
    """name -> `Metadata`; `get` creates an empty one on first use (like detectron2)."""

    def get(self, name: str) -> Metadata:
        if not name:
            raise ValueError("MetadataCatalog.get: empty dataset name")
        r = self.data.get(name)
        if r is None:
            r = self.data[name] = Metadata(name=name)
        return r

    def list(self) -> list[str]:
        return list(self.keys())

    def remove(self, name: str) -> None:
        self.pop(name)

    def __str__(self) -> str:
        return f"MetadataCatalog(registered metadata: {', '.join(self.keys())})"

    __repr__ = __str__


MetadataCatalog = _MetadataCatalog()
