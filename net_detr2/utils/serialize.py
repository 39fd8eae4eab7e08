"""Make lambdas/closures picklable across processes (dataset functions given to workers)."""

from __future__ import annotations

import pickle
from typing import Any

try:  # cloudpickle can serialise closures; fall back to pickle when it is not installed.
    import cloudpickle as _pickler
except ImportError:  # pragma: no cover - environment dependent
    _pickler = pickle

__all__ = ["PicklableWrapper"]


class PicklableWrapper:
    """Wrap an object so that it is pickled with cloudpickle (when available).

    Attribute access and calls go to the wrapped object.
    """

    def __init__(self, obj: Any):
        while isinstance(obj, PicklableWrapper):
            obj = obj._obj
        self._obj = obj

    def __reduce__(self):
        return _unpickle, (_pickler.dumps(self._obj),)

    def __call__(self, *args, **kwargs):
        return self._obj(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        if attr == "_obj":
            raise AttributeError(attr)
        return getattr(self._obj, attr)


def _unpickle(data: bytes) -> Any:
    return pickle.loads(data)
