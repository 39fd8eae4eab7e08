"""LazyConfig: experiments written as Python (or YAML) files of ``LazyCall`` nodes.

A ``.py`` config is executed as a script; its top-level dict-like variables form the config.
Relative imports inside config files (``from ..common.optim import SGD``) are resolved to *files*
next to the config, not to Python packages, so config trees need no ``__init__.py`` and are not
importable modules; the repository's shared configs have an absolute name,
``from net_detr2.model_zoo.configs.common.optim import SGD`` (see `net_detr2.model_zoo`). Every load
executes the files afresh, so mutating one loaded config never affects another.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import contextvars
import dataclasses
import inspect
import logging
import os
import tempfile
import types
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from net_detr2.model_zoo import CONFIGS_MODULE, configs_root

from .instantiate import ConfigKeyError, callable_name, did_you_mean

__all__ = ["LazyCall", "LazyConfig", "default_output_dir"]

logger = logging.getLogger(__name__)

_FLAGS = {"allow_objects": True}
# Package name given to executed config files; the import hook recognises their relative imports by it.
_CFG_PACKAGE = "net_detr2._lazy_config_files"
# The file given to the outermost LazyConfig.load while it executes (what default_output_dir derives from).
_LOADING_FILE: contextvars.ContextVar[str | None] = contextvars.ContextVar("net_detr2_loading_config", default=None)


def default_output_dir() -> str:
    """``output/<path of the config file being loaded, without .py>``: a folder of its own for every config.

    Called from a config file while ``LazyConfig.load`` executes it (``configs/common/train.py`` uses it for
    ``train.output_dir``); the path is that of the file given to ``LazyConfig.load`` (``train_net.py
    --config-file``), not of the file that calls this, and is taken relative to the current folder
    (an absolute path outside it is used whole, without its leading ``/``). E.g. loading
    ``configs/shapes/faster_rcnn_R18_FPN.py`` gives ``output/configs/shapes/faster_rcnn_R18_FPN``.
    """
    filename = _LOADING_FILE.get()
    if filename is None:
        raise RuntimeError("default_output_dir() is meant to be called from a config file that LazyConfig.load runs")
    rel = os.path.relpath(os.path.abspath(filename))
    if rel == ".." or rel.startswith(".." + os.sep):
        rel = os.path.abspath(filename).lstrip(os.sep)
    return os.path.join("output", os.path.splitext(rel)[0])


class LazyCall:
    """Wrap a callable so that calling it records the call as a config node instead.

    ``LazyCall(torch.optim.SGD)(lr=0.01)`` returns
    ``DictConfig({"_target_": torch.optim.SGD, "lr": 0.01})``; ``instantiate`` makes the call.
    """

    def __init__(self, target: Callable | str):
        if not (callable(target) or isinstance(target, str)):
            raise TypeError(f"LazyCall needs a callable or a dotted name, got {target!r}")
        if isinstance(target, type) and dataclasses.is_dataclass(target):
            # OmegaConf would turn a dataclass type into a structured-config dict: keep its name instead.
            target = callable_name(target)
        self._target = target

    def __call__(self, **kwargs: Any) -> DictConfig:
        if "_target_" in kwargs:
            raise ValueError("LazyCall: '_target_' is reserved and cannot be an argument")
        node = {"_target_": self._target}
        node.update(kwargs)
        return DictConfig(content=node, flags=_FLAGS)


# --------------------------------------------------------------------------------------------
# Loading .py configs with file-based relative imports
# --------------------------------------------------------------------------------------------
def _random_package_name(filename: str) -> str:
    # A unique package per loaded file keeps executed configs out of each other's way.
    return f"{_CFG_PACKAGE}.{uuid.uuid4().hex[:8]}.{os.path.basename(filename)}"


def _resolve_relative(importer_file: str, name: str, level: int) -> str:
    """Path (without ``.py``) that ``from <level dots><name> import ...`` refers to."""
    cur = os.path.dirname(os.path.abspath(importer_file))
    for _ in range(level - 1):
        cur = os.path.dirname(cur)
    return os.path.join(cur, *name.split(".")) if name else cur


def _exec_config_file(filename: str) -> dict:
    """Execute one config file; returns its global namespace."""
    with open(filename, encoding="utf-8") as f:
        source = f.read()
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as e:
        raise SyntaxError(f"Config file {filename} has invalid syntax: {e}") from e
    namespace = {
        "__file__": filename,
        "__package__": _random_package_name(filename),
        "__name__": "__lazy_config__",
    }
    exec(code, namespace)
    return namespace


def _module_from_namespace(name: str, filename: str, namespace: dict) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = filename
    for k, v in namespace.items():
        if k in ("__file__", "__package__", "__name__", "__builtins__"):
            continue
        if isinstance(v, dict) and not isinstance(v, DictConfig):
            # As in detectron2: dicts of an imported config file become DictConfigs, so that the
            # importer can write ``train.max_iter = ...``.
            v = DictConfig(v, flags=_FLAGS)
        setattr(module, k, v)
    return module


@contextlib.contextmanager
def _patch_import():
    """Make relative imports inside config files load sibling config *files*."""
    old_import = builtins.__import__

    def new_import(name, globals=None, locals=None, fromlist=(), level=0):
        in_config = globals is not None and str(globals.get("__package__") or "").startswith(_CFG_PACKAGE)
        shipped = level == 0 and (name == CONFIGS_MODULE or name.startswith(CONFIGS_MODULE + "."))
        if not in_config or (level == 0 and not shipped):
            return old_import(name, globals, locals, fromlist=fromlist, level=level)
        importer = globals["__file__"]
        if shipped:
            if not fromlist:
                raise ImportError(f"{importer}: use 'from {name} import ...' (config files are not packages)")
            base = os.path.join(str(configs_root()), *name[len(CONFIGS_MODULE) :].split(".")[1:])
        else:
            base = _resolve_relative(importer, name, level)
        if os.path.isfile(base + ".py"):
            filename = base + ".py"
            return _module_from_namespace(name or "config", filename, _exec_config_file(filename))
        if os.path.isdir(base):
            # `from ..common import optim`: each imported name is a file in that directory.
            package = types.ModuleType(name or os.path.basename(base))
            package.__file__ = base
            for item in fromlist or ():
                item_file = os.path.join(base, item + ".py")
                if not os.path.isfile(item_file):
                    raise ImportError(
                        f"{importer}: cannot import '{item}' from '{'.' * level}{name}': no config file {item_file}"
                    )
                setattr(package, item, _module_from_namespace(item, item_file, _exec_config_file(item_file)))
            return package
        raise ImportError(
            f"{importer}: import '{'.' * level}{name}' does not name a config file ({base}.py does not exist)"
        )

    builtins.__import__ = new_import
    try:
        yield
    finally:
        builtins.__import__ = old_import


def _is_config_value(v: Any) -> bool:
    return isinstance(v, (DictConfig, ListConfig, dict, list))


class LazyConfig:
    """Load, save, override and print LazyConfig files."""

    @staticmethod
    def load(filename: str, keys: None | str | Sequence[str] = None) -> Any:
        """Load a ``.py`` or ``.yaml`` config.

        Args:
            filename: path of the file.
            keys: ``None`` -> the whole config (``DictConfig``); a key -> that value; a list of
                keys -> a tuple of values.
        """
        filename = os.fspath(filename).replace("/./", "/")
        if not os.path.isfile(filename):
            raise FileNotFoundError(f"Config file {filename} does not exist")
        ext = os.path.splitext(filename)[1]
        if ext == ".py":
            token = _LOADING_FILE.set(_LOADING_FILE.get() or filename)
            try:
                with _patch_import():
                    namespace = _exec_config_file(os.path.abspath(filename))
            finally:
                _LOADING_FILE.reset(token)
            content = {k: v for k, v in namespace.items() if not k.startswith("_") and _is_config_value(v)}
            cfg = DictConfig({}, flags=_FLAGS)
            for k, v in content.items():
                # Re-wrap so that a node imported by several names is not shared between them.
                cfg[k] = v
            ret = cfg
        elif ext in (".yaml", ".yml"):
            with open(filename, encoding="utf-8") as f:
                obj = OmegaConf.load(f)
            if not isinstance(obj, DictConfig):
                raise ValueError(f"Config file {filename} must contain a mapping at the top level")
            ret = DictConfig(OmegaConf.to_container(obj, resolve=False), flags=_FLAGS)
        else:
            raise ValueError(f"Config file {filename} has unsupported extension '{ext}' (use .py or .yaml)")
        if keys is None:
            return ret
        if isinstance(keys, str):
            return LazyConfig._get_key(ret, keys, filename)
        return tuple(LazyConfig._get_key(ret, k, filename) for k in keys)

    @staticmethod
    def _get_key(cfg: DictConfig, key: str, filename: str) -> Any:
        if key not in cfg:
            raise ConfigKeyError(f"{filename}: no top-level key '{key}'{did_you_mean(key, cfg.keys())}")
        return cfg[key]

    # ----------------------------------------------------------------------------------------
    @staticmethod
    def apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
        """Apply ``"a.b.c=value"`` overrides in place (and return ``cfg``).

        Values are parsed as Python literals (``10``, ``0.5``, ``None``, ``[1, 2]``, ``"x"``), with
        YAML's ``true``/``false``/``null`` accepted too, falling back to the raw string
        (``train.output_dir=./out``). Every key must already exist; ``+a.b=value`` adds a new
        key. A missing key fails with the existing keys closest to it.

        A new value must fit the type of the value it replaces: an integer key takes an integer only
        (``train.max_iter=2.7`` or ``=abc`` is refused, never truncated), a float key an integer or a float,
        a boolean key ``True``/``False``; a string key keeps the text as written (``train.output_dir=2024``
        is the string ``"2024"``). ``None``, containers and ``${...}`` interpolations are not checked.
        """
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"Override '{item}' is not of the form key=value")
            key, value_str = item.split("=", 1)
            key = key.strip()
            add = key.startswith("+")
            if add:
                key = key[1:]
            value = _parse_value(value_str)
            parts = key.split(".")
            node = cfg
            for i, part in enumerate(parts[:-1]):
                node = LazyConfig._child(node, part, ".".join(parts[: i + 1]), item)
            last = parts[-1]
            if isinstance(node, ListConfig):
                if not last.lstrip("-").isdigit() or not -len(node) <= int(last) < len(node):
                    raise ConfigKeyError(
                        f"Override '{item}': index '{last}' out of range for list '{'.'.join(parts[:-1])}'"
                    )
                node[int(last)] = _checked_value(item, key, _raw(node, int(last)), value, value_str)
                continue
            if not isinstance(node, DictConfig):
                raise ConfigKeyError(f"Override '{item}': '{'.'.join(parts[:-1])}' is {node!r}, not a config node")
            if last not in node and not add:
                # An argument of a LazyCall node's target that the node leaves at its default also exists.
                accepted = _target_parameters(node)
                if last not in accepted:
                    raise ConfigKeyError(
                        f"Override '{item}': key '{key}' does not exist"
                        f"{LazyConfig._hint('.'.join(parts[:-1]), last, dict.fromkeys(list(node.keys()) + accepted))}"
                    )
            node[last] = _checked_value(item, key, _raw(node, last), value, value_str) if last in node else value
        return cfg

    @staticmethod
    def _hint(prefix: str, name: str, keys) -> str:
        """``"; did you mean 'a.b.x'?"`` listing the keys of a node nearest to ``name`` with full paths."""
        names = [f"{prefix}.{n}" if prefix else str(n) for n in difflib_names(name, keys)]
        if not names:
            return ""
        if len(names) == 1:
            return f"; did you mean '{names[0]}'?"
        return "; did you mean one of " + ", ".join(f"'{n}'" for n in names) + "?"

    @staticmethod
    def _child(node: Any, part: str, sofar: str, item: str) -> Any:
        if isinstance(node, ListConfig):
            if part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
                return node[int(part)]
            raise ConfigKeyError(f"Override '{item}': index '{part}' out of range for list at '{sofar}'")
        if not isinstance(node, DictConfig):
            raise ConfigKeyError(f"Override '{item}': cannot descend into '{sofar}' ({node!r} is not a config node)")
        if part not in node:
            parent = sofar.rsplit(".", 1)[0] if "." in sofar else ""
            hint = LazyConfig._hint(parent, part, node.keys())
            raise ConfigKeyError(f"Override '{item}': key '{sofar}' does not exist{hint}")
        return node[part]

    # ----------------------------------------------------------------------------------------
    @staticmethod
    def to_plain(cfg: Any) -> Any:
        """Config -> plain containers with callables replaced by their dotted names."""
        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=False)
        elif isinstance(cfg, ListConfig):
            cfg = OmegaConf.to_container(cfg, resolve=False)
        return _callables_to_names(cfg)

    @staticmethod
    def save(cfg: DictConfig, filename: str) -> None:
        """Write ``cfg`` as YAML (callables as dotted names) atomically; ``load`` reads it back."""
        plain = LazyConfig.to_plain(cfg)
        text = OmegaConf.to_yaml(DictConfig(plain, flags=_FLAGS))
        directory = os.path.dirname(os.path.abspath(filename))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(filename), dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filename)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @staticmethod
    def to_py(cfg: DictConfig, prefix: str = "cfg.") -> str:
        """Python source that rebuilds ``cfg`` (for reading / diffing; not necessarily minimal)."""
        plain = LazyConfig.to_plain(cfg)
        modules: set[str] = set()

        def fmt(v: Any, indent: int) -> str:
            pad = " " * (indent + 4)
            if isinstance(v, dict):
                if v.get("_target_") == _LOCATE and set(v) == {"_target_", "name"}:
                    mod = v["name"].rsplit(".", 1)[0]
                    if mod:
                        modules.add(mod)
                    return v["name"]
                if "_target_" in v:
                    target = v["_target_"]
                    mod = target.rsplit(".", 1)[0] if "." in target else ""
                    if mod:
                        modules.add(mod)
                    args = [f"{pad}{k}={fmt(x, indent + 4)}," for k, x in v.items() if k != "_target_"]
                    head = f"L({target})("
                    return head + ("\n" + "\n".join(args) + "\n" + " " * indent + ")" if args else ")")
                if all(isinstance(k, str) and k.isidentifier() for k in v):
                    items = [f"{pad}{k}={fmt(x, indent + 4)}," for k, x in v.items()]
                    return "dict(" + ("\n" + "\n".join(items) + "\n" + " " * indent + ")" if items else ")")
                items = [f"{pad}{k!r}: {fmt(x, indent + 4)}," for k, x in v.items()]
                return "{" + ("\n" + "\n".join(items) + "\n" + " " * indent + "}" if items else "}")
            if isinstance(v, list):
                if not v:
                    return "[]"
                return "[\n" + "\n".join(f"{pad}{fmt(x, indent + 4)}," for x in v) + "\n" + " " * indent + "]"
            return repr(v)

        body = [f"{prefix}{k} = {fmt(v, 0)}" for k, v in plain.items()]
        header = ["from net_detr2.config import LazyCall as L"]
        header += [f"import {m}" for m in sorted(modules)]
        if prefix.startswith("cfg"):
            header.append("from omegaconf import DictConfig")
            header.append("cfg = DictConfig({}, flags={'allow_objects': True})")
        return "\n".join(header) + "\n\n" + "\n".join(body) + "\n"


_YAML_WORDS = {"true": True, "false": False, "null": None, "none": None}


def _parse_value(text: str) -> Any:
    """Override value: a Python literal, a YAML boolean/null word, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    stripped = text.strip()
    if stripped.lower() in _YAML_WORDS:
        return _YAML_WORDS[stripped.lower()]
    return text


def _raw(node: DictConfig | ListConfig, key: str | int) -> Any:
    """The value stored at ``key`` without resolving it (an interpolation stays its ``${...}`` text)."""
    child = node._get_node(key)
    return child._value() if child is not None else None


def _checked_value(item: str, key: str, old: Any, new: Any, text: str) -> Any:
    """``new`` if it may replace ``old`` (see `LazyConfig.apply_overrides`), else a ``ValueError`` naming the key."""
    if new is None or any(isinstance(v, str) and "${" in v for v in (old, new)):
        return new
    if isinstance(old, bool):
        expected, ok = "a boolean (True or False)", isinstance(new, bool)
    elif isinstance(old, int):
        expected, ok = "an integer", isinstance(new, int) and not isinstance(new, bool)
    elif isinstance(old, float):
        expected, ok = "a number", isinstance(new, (int, float)) and not isinstance(new, bool)
        new = float(new) if ok else new
    elif isinstance(old, str):
        # the text as written: `train.output_dir=2024` means the folder "2024", not the number
        return text.strip() if isinstance(new, (bool, int, float)) else new
    else:
        return new
    if not ok:
        raise ValueError(
            f"Override '{item}': {key} expects {expected} (the config has {old!r}), got {new!r}"
            + (" (a fraction is refused, not truncated)" if isinstance(old, int) and isinstance(new, float) else "")
        )
    return new


def _target_parameters(node: DictConfig) -> list[str]:
    """Keyword parameters of the ``_target_`` of a LazyCall node (``[]`` if none / not inspectable)."""
    if "_target_" not in node:
        return []
    target = node["_target_"]
    try:
        if isinstance(target, str):
            from .instantiate import locate

            target = locate(target)
        params = inspect.signature(target).parameters.values()
    except Exception:
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in kinds]


def difflib_names(name: str, keys) -> list[str]:
    from .instantiate import nearest_names

    return nearest_names(name, list(keys))


# A class or function given as an argument value (not as ``_target_``), e.g. ``block_class=BasicBlock``, is
# saved as a node that instantiates back to the object, so that a saved config builds the same model.
_LOCATE = "net_detr2.config.locate"


def _callables_to_names(obj: Any, key: Any = None) -> Any:
    if isinstance(obj, dict):
        return {k: _callables_to_names(v, k) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_callables_to_names(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if callable(obj) and (
        inspect.isclass(obj)
        or inspect.isfunction(obj)
        or inspect.isbuiltin(obj)
        or inspect.ismethod(obj)
        or hasattr(obj, "__qualname__")
    ):
        name = callable_name(obj)
        if "<locals>" in name or "<lambda>" in name:
            logger.warning(f"Config value {obj!r} has no importable name; saved as '{name}', which will not load back")
        return name if key == "_target_" else {"_target_": _LOCATE, "name": name}
    logger.warning(f"Config value {obj!r} of type {type(obj).__name__} is not serializable; saved as its repr")
    return repr(obj)
