"""Atomic file writes (checkpoints, ``last_checkpoint``, evaluation results) and clean-up after interrupted ones.

A write goes to ``<dir>/.tmp.<name>.<pid>``, is flushed and fsync'ed, then renamed over ``<dir>/<name>``:
readers see the old file or the complete new one, never a part. A process killed mid-write leaves its
temporary file behind; :func:`remove_stale_temp_files` deletes those of dead processes.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from collections.abc import Callable
from typing import IO, Any

__all__ = ["atomic_write", "remove_stale_temp_files", "TEMP_PREFIX"]

logger = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp."
# .tmp.<basename>.<pid>: the pid tells whether the writer may still be alive.
_TEMP_NAME = re.compile(r"^\.tmp\.(?P<target>.+)\.(?P<pid>\d+)$")
# errno values that mean "the storage is full" (ENOSPC), or full for this user (EDQUOT).
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _temp_path(path: str) -> str:
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f"{TEMP_PREFIX}{name}.{os.getpid()}")


def _full_disk_cause(exc: BaseException) -> OSError | None:
    """The ENOSPC/EDQUOT ``OSError`` in ``exc``'s chain (torch's writer wraps it in a RuntimeError), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _free_bytes(directory: str) -> int | None:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def atomic_write(path: str | os.PathLike, write_fn: Callable[[IO[Any]], Any], mode: str = "wb") -> None:
    """Write ``path`` so that readers see either the old or the complete new content.

    ``write_fn(f)`` writes into ``<dir>/.tmp.<name>.<pid>``, which is flushed, fsync'ed and renamed over
    ``path`` (``os.replace`` is atomic on POSIX and Windows). On any error the temporary file is removed
    and ``path`` is untouched.

    Raises:
        OSError: with ``errno.ENOSPC`` and a message naming ``path`` when the disk (or quota) is full,
            whatever layer noticed it (torch's zip writer reports it as a ``RuntimeError``); other write
            errors from the writer are re-raised as ``OSError`` naming ``path``.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = _temp_path(path)
    try:
        with open(tmp, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        full = _full_disk_cause(e)
        if full is not None:
            free = _free_bytes(directory)
            where = f" ({free / 2**20:.1f} MiB free there now)" if free is not None else ""
            raise OSError(
                full.errno,
                f"No space left on device while writing {path}{where}: nothing was written and the previous "
                f"content of {path} (if any) is intact. Free some space (or save elsewhere) and try again",
            ) from e
        if isinstance(e, RuntimeError) and "inline_container" in str(e):  # torch's zip writer, no OSError inside
            raise OSError(f"Cannot write {path}: {e}") from e
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # called before this process writes anything: a file with our pid is a previous process's
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OverflowError:
        return False
    return True


def remove_stale_temp_files(directory: str | os.PathLike) -> list[str]:
    """Delete the ``.tmp.<name>.<pid>`` files that interrupted :func:`atomic_write` calls left in ``directory``.

    Call it when a run starts in ``directory`` (before it saves anything). Only files matching that
    pattern whose writer process is gone are removed (a live process may still be writing its own);
    sub-directories are not searched. Returns the removed paths (also logged). A missing directory is
    nothing to clean.
    """
    directory = os.fspath(directory)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    removed = []
    for name in sorted(names):
        m = _TEMP_NAME.match(name)
        path = os.path.join(directory, name)
        if m is None or not os.path.isfile(path) or os.path.islink(path) or _pid_alive(int(m["pid"])):
            continue
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        removed.append(path)
    if removed:
        logger.info(
            "Removed %d temporary file(s) of interrupted saves in %s: %s",
            len(removed),
            directory,
            ", ".join(os.path.basename(p) for p in removed),
        )
    return removed
