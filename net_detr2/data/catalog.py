"""Global registries of datasets (`DatasetCatalog`) and of their metadata (`MetadataCatalog`).

A dataset is registered as a *function* returning ``list[dict]`` (detectron2's "dataset dicts"), so
registering is free and the files are only read when the dataset is asked for.
"""

from __future__ import annotations

import logging
from collections import UserDict
from collections.abc import Callable
from typing import Any

__all__ = ["DatasetCatalog", "MetadataCatalog", "Metadata"]


class _DatasetCatalog(UserDict):
    """name -> function returning the dataset's ``list[dict]``."""

    def register(self, name: str, func: Callable[[], list]) -> None:
        """Register ``func`` (no arguments, returns ``list[dict]``) under ``name``.

        Raises if ``func`` is not callable or ``name`` is already taken (names are global; re-registering
        silently would hide a typo in a second registration).
        """
        if not callable(func):
            raise TypeError(
                f"DatasetCatalog.register('{name}'): expected a callable returning list[dict], got {type(func)}"
            )
        if name in self:
            raise AssertionError(f"DatasetCatalog: dataset '{name}' is already registered")
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

logger = logging.getLogger(__name__)
