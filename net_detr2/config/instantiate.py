"""Turn LazyConfig nodes (dicts with a ``_target_``) into objects, recursively.

A node is a mapping whose ``_target_`` is a callable or the dotted name of one; every other key
is a keyword argument. Arguments are checked against the target's signature before the call, so
a typo'd key fails with the node's config path and the nearest valid names instead of a bare
``TypeError`` from deep inside a constructor.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pydoc
from collections import abc
from collections.abc import Callable, Iterable
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = ["instantiate", "locate", "callable_name", "nearest_names", "ConfigKeyError", "InstantiationError"]


class ConfigKeyError(KeyError):
    """A config key that does not exist. ``str()`` is the plain message (``KeyError`` would quote it)."""

    def __str__(self) -> str:  # pragma: no cover - trivial
        return str(self.args[0]) if self.args else ""


class InstantiationError(TypeError):
    """A config node whose arguments do not fit its ``_target_``."""


def nearest_names(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The up-to-``n`` entries of ``candidates`` most similar to ``name`` (difflib ratio >= 0.5)."""
    return difflib.get_close_matches(str(name), [str(c) for c in candidates], n=n, cutoff=0.5)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` / ``"; did you mean one of 'x', 'y'?"`` or ``""`` when nothing is close."""
    near = nearest_names(name, candidates)
    if not near:
        return ""
    if len(near) == 1:
        return f"; did you mean '{near[0]}'?"
    return "; did you mean one of " + ", ".join(f"'{x}'" for x in near) + "?"


def locate(name: str) -> Any:
    """Import the object named by a dotted path such as ``"torch.optim.SGD"``.

    Resolves the longest importable module prefix, then walks attributes (so nested classes
    ``pkg.mod.Outer.Inner`` work). Raises ``ImportError`` naming ``name`` when it cannot be found.
    """
    if not isinstance(name, str) or not name:
        raise ImportError(f"Cannot locate {name!r}: expected a non-empty dotted name")
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        module_name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            # Only keep searching when it's this module (or a parent) that is missing, not an
            # import error raised from inside an existing module.
            if e.name is not None and not module_name.startswith(e.name):
                raise
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
            return obj
        except AttributeError:
            break
    obj = pydoc.locate(name)
    if obj is None:
        raise ImportError(f"Cannot locate {name!r}: no such module or attribute")
    return obj


def callable_name(obj: Any) -> str:
    """The dotted name ``locate`` maps back to ``obj`` (``"module.QualName"``)."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if module is None or qualname is None:
        raise ValueError(f"Cannot name {obj!r}: it has no __module__/__qualname__")
    # Prefer the shortest public alias, e.g. torch.optim.sgd.SGD -> torch.optim.SGD.
    parts = module.split(".")
    for i in range(1, len(parts)):
        prefix = ".".join(parts[:i])
        try:
            if locate(f"{prefix}.{qualname}") is obj:
                return f"{prefix}.{qualname}"
        except Exception:
            continue
    return f"{module}.{qualname}"


def _node_path(cfg: Any, fallback: str) -> str:
    if isinstance(cfg, (DictConfig, ListConfig)):
        try:
            key = cfg._get_full_key(None)
            if key:
                return str(key)
        except Exception:
            pass
    return fallback


def _check_arguments(target: Callable, kwargs: dict, path: str) -> None:
    """Raise ``InstantiationError`` if ``kwargs`` cannot be passed to ``target``."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return  # builtins without a signature: let the call itself decide
    params = sig.parameters
    where = f"{path}: " if path else ""
    tname = getattr(target, "__qualname__", None) or getattr(target, "__name__", repr(target))
    takes_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_var_kw:
        accepted = [
            n
            for n, p in params.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]
        for k in kwargs:
            if k not in accepted:
                raise InstantiationError(
                    f"{where}unknown argument '{k}' for {tname}{did_you_mean(k, accepted)}"
                    f" (accepted: {', '.join(accepted)})"
                )
    missing = [
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and n not in kwargs
    ]
    # Bound methods / classes: inspect.signature already drops self.
    if missing:
        raise InstantiationError(
            f"{where}missing required argument(s) {', '.join(repr(m) for m in missing)} for {tname}"
        )


def instantiate(cfg: Any, _path: str | None = None) -> Any:
    """Recursively build the objects a config describes.

    Args:
        cfg: a ``DictConfig``/``dict`` with ``_target_`` (callable or dotted name) and keyword
            arguments; lists/dicts without ``_target_`` are walked and returned as plain
            ``list``/``dict``; anything else is returned unchanged.
    Returns:
        the built object.
    Raises:
        InstantiationError (a ``TypeError``): an argument the target does not accept / lacks,
            with the config path of the node, e.g.
            ``"model.roi_heads: unknown argument 'num_clases' for StandardROIHeads; did you mean 'num_classes'?"``.
        ImportError: a dotted ``_target_`` that cannot be imported.
    """
    path = _node_path(cfg, _path or "")
    if isinstance(cfg, (ListConfig, list, tuple)):
        out = [instantiate(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(cfg)]
        return tuple(out) if isinstance(cfg, tuple) else out
    if isinstance(cfg, (DictConfig, abc.Mapping)):
        if isinstance(cfg, DictConfig) and cfg._is_none():
            return None
        keys = list(cfg.keys())
        if "_target_" not in keys:
            return {k: instantiate(cfg[k], f"{path}.{k}" if path else str(k)) for k in keys}
        target = cfg["_target_"]
        if isinstance(target, str):
            try:
                target = locate(target)
            except ImportError as e:
                raise ImportError(f"{path or '<root>'}._target_: {e}") from e
        if not callable(target):
            raise InstantiationError(f"{path or '<root>'}._target_ = {target!r} is not callable")
        kwargs = {k: instantiate(cfg[k], f"{path}.{k}" if path else str(k)) for k in keys if k != "_target_"}
        _check_arguments(target, kwargs, path)
        return target(**kwargs)
    return cfg


def to_container(cfg: Any) -> Any:
    """``DictConfig``/``ListConfig`` -> plain ``dict``/``list`` (callables kept as objects)."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg
