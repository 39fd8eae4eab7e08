"""Output folders of the drawing tools: never inside the input images' folders, never over an existing file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["check_output_dir", "new_file_path"]


def check_output_dir(output: str | Path, input_dirs: Iterable[str | Path]) -> None:
    """Raise ``ValueError`` when ``output`` is, or lies inside, one of ``input_dirs`` (the tools never write
    among the user's images)."""
    out = Path(output).resolve()
    for d in {Path(x).resolve() for x in input_dirs}:
        if d == out or d in out.parents:
            raise ValueError(f"output folder {output} is (or is inside) the image folder {d}; choose another folder")


def new_file_path(output: str | Path, stem: str, used: set[str], suffix: str = ".png") -> Path:
    """``output/<stem><suffix>``, or ``<stem>_<k><suffix>`` when that name was used in this run (``used``,
    updated) or the file exists already: an existing file is never overwritten."""
    output = Path(output)
    name, k = f"{stem}{suffix}", 0
    while name in used or (output / name).exists():
        k += 1
        name = f"{stem}_{k}{suffix}"
    used.add(name)
    return output / name
