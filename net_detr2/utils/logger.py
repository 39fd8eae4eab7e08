"""Logging setup: console on the main process, one ``log.txt`` file per rank."""

from __future__ import annotations

import atexit
import functools
import logging
import os
import sys
import time
from collections import Counter

__all__ = ["setup_logger", "log_first_n", "log_every_n", "log_every_n_seconds"]

_FMT = "[%(asctime)s] %(name)s %(levelname)s: %(message)s"
_DATEFMT = "%m/%d %H:%M:%S"


class _ColorfulFormatter(logging.Formatter):
    def __init__(self, *args, root_name: str, abbrev_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._root_name = root_name + "."
        self._abbrev_name = abbrev_name + "." if abbrev_name else ""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.name = record.name.replace(self._root_name, self._abbrev_name)
        log = super().formatMessage(record)
        if record.levelno == logging.WARNING:
            prefix = "\x1b[31mWARNING\x1b[0m"
        elif record.levelno >= logging.ERROR:
            prefix = "\x1b[31;5mERROR\x1b[0m"
        else:
            return log
        return prefix + " " + log


@functools.lru_cache  # one set of handlers per (output, rank, name): repeated calls are no-ops
def setup_logger(
    output: str | None = None,
    distributed_rank: int = 0,
    *,
    color: bool = True,
    name: str = "net_detr2",
    abbrev_name: str | None = None,
) -> logging.Logger:
    """Configure logger ``name``.

    Args:
        output: a directory (-> ``output/log.txt``) or a file name ending in .txt/.log; rank ``r > 0``
            writes ``<file>.rank<r>``. ``None``: console only.
        distributed_rank: rank of this process; only rank 0 logs to the console.
        color: colour WARNING/ERROR prefixes on the console.
        name: logger name; ``abbrev_name`` shortens it in console records (default ``"nd2"``).
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    if abbrev_name is None:
        abbrev_name = "nd2" if name == "net_detr2" else name
    plain = logging.Formatter(_FMT, datefmt=_DATEFMT)
    has_console = any(getattr(h, "_net_detr2_console", False) for h in logger.handlers)
    if distributed_rank == 0 and not has_console:  # one console handler even if called again (new output dir)
        ch = logging.StreamHandler(stream=sys.stdout)
        ch._net_detr2_console = True
        ch.setLevel(logging.DEBUG)
        if color and sys.stdout.isatty():
            ch.setFormatter(
                _ColorfulFormatter(
                    "\x1b[32m[%(asctime)s %(name)s]: \x1b[0m%(message)s",
                    datefmt=_DATEFMT,
                    root_name=name,
                    abbrev_name=abbrev_name,
                )
            )
        else:
            ch.setFormatter(plain)
        logger.addHandler(ch)
    if output is not None:
        filename = output if output.endswith((".txt", ".log")) else os.path.join(output, "log.txt")
        if distributed_rank > 0:
            filename = f"{filename}.rank{distributed_rank}"
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        fh = logging.StreamHandler(_cached_log_stream(filename))
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(plain)
        logger.addHandler(fh)
    return logger


@functools.cache
def _cached_log_stream(filename: str):
    stream = open(filename, "a", buffering=1, encoding="utf-8")
    atexit.register(stream.close)
    return stream


# ---------------------------------------------------------------------------------------------
# Rate-limited logging
# ---------------------------------------------------------------------------------------------
_LOG_COUNTER: Counter = Counter()
_LOG_TIMER: dict = {}


def _caller_key() -> tuple[str, tuple]:
    frame = sys._getframe(2)
    while frame:
        code = frame.f_code
        if os.path.join("utils", "logger.") not in code.co_filename:
            mod_name = frame.f_globals.get("__name__", "__main__")
            return mod_name, (code.co_filename, frame.f_lineno, code.co_name)
        frame = frame.f_back
    return "net_detr2", ("?", 0, "?")


def log_first_n(lvl: int, msg: str, n: int = 1, *, name: str | None = None, key: str = "caller") -> None:
    """Log ``msg`` only the first ``n`` times it is reached (per call site, or per message with key="message")."""
    caller_module, caller_key = _caller_key()
    hash_key = caller_key if key == "caller" else msg
    _LOG_COUNTER[hash_key] += 1
    if _LOG_COUNTER[hash_key] <= n:
        logging.getLogger(name or caller_module).log(lvl, msg)


def log_every_n(lvl: int, msg: str, n: int = 1, *, name: str | None = None) -> None:
    """Log once every ``n`` times this call site is reached."""
    caller_module, key = _caller_key()
    _LOG_COUNTER[key] += 1
    if n == 1 or _LOG_COUNTER[key] % n == 1:
        logging.getLogger(name or caller_module).log(lvl, msg)


def log_every_n_seconds(lvl: int, msg: str, n: float = 1, *, name: str | None = None) -> None:
    """Log at most once every ``n`` seconds from this call site."""
    caller_module, key = _caller_key()
    last = _LOG_TIMER.get(key)
    now = time.time()
    if last is None or now - last >= n:
        logging.getLogger(name or caller_module).log(lvl, msg)
        _LOG_TIMER[key] = now
