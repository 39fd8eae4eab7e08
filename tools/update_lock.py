#!/usr/bin/env python
"""Regenerate requirements.lock from requirements.txt (``make lock``).

Installs requirements.txt into a clean temporary virtual environment, takes ``pip freeze`` of it (every package,
transitive ones included, at its exact version), downloads the file pip picks for each one and writes its
sha256, so that ``pip install --require-hashes -r requirements.lock`` installs exactly these files. The hashes
are those of this platform's wheels (the lock is made for Linux x86_64, CPython 3.11).

    python tools/update_lock.py [--python python3.11] [--output requirements.lock]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _pin_of(filename: str, pins: list[str]) -> str:
    """The ``name==version`` pin a wheel or sdist file belongs to (file names normalise the name differently)."""
    norm = _normalise(filename)
    for pin in pins:
        name, version = pin.split("==")
        if norm.startswith(f"{_normalise(name)}-{_normalise(version)}"):
            return pin
    raise SystemExit(f"downloaded file {filename} matches no pin")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=sys.executable, help="interpreter of the clean environment")
    p.add_argument("--requirements", default=str(REPO / "requirements.txt"))
    p.add_argument("--output", default=str(REPO / "requirements.lock"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="net_detr2-lock-") as tmp:
        venv, files = Path(tmp) / "venv", Path(tmp) / "files"
        _run([args.python, "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip"]
        _run([*pip, "install", "-r", args.requirements])
        # --all: setuptools too (tensorboard needs it, and --require-hashes wants every package pinned); pip is
        # the installer, not a dependency
        frozen = _run([*pip, "freeze", "--all", "--exclude-editable"], capture_output=True).stdout.split()
        pins = sorted((line for line in frozen if "==" in line and not line.startswith("pip==")), key=str.lower)
        pinned = Path(tmp) / "pinned.txt"
        pinned.write_text("\n".join(pins) + "\n")
        _run([*pip, "download", "--no-deps", "-d", str(files), "-r", str(pinned)])
        lines = lock_lines(pins, files)
    write_lock(lines, Path(args.output))
    print(f"Wrote {args.output}: {len(pins)} packages")


def lock_lines(pins: list[str], files: Path) -> list[str]:
    """The lock file's lines: a header, then each pin with the sha256 of its downloaded file(s) in ``files``."""
    hashes: dict[str, list[str]] = {}
    for f in sorted(files.iterdir()):
        hashes.setdefault(_pin_of(f.name, pins), []).append(_sha256(f))
    lines = [
        "# Exact versions of every package net_detr2 and its tests need, with the sha256 of the file pip",
        "# installs (Linux x86_64, CPython 3.11). Generated from requirements.txt by `make lock`",
        "# (tools/update_lock.py): pip freeze of a clean virtual environment. Do not edit by hand.",
    ]
    for pin in pins:
        if pin not in hashes:
            raise SystemExit(f"no downloaded file for {pin}")
        lines.append(pin + "".join(f" \\\n    --hash=sha256:{h}" for h in hashes[pin]))
    return lines


def write_lock(lines: list[str], out: Path) -> None:
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text("\n".join(lines) + "\n")
    os.replace(tmp_out, out)


if __name__ == "__main__":
    main()
