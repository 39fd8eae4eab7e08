"""The README's test command also runs the linter and the formatter check (configured in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _ruff() -> str:
    """The ruff of this interpreter's environment (installed with the test requirements), else the one on PATH."""
    beside = Path(sys.executable).with_name("ruff")
    found = str(beside) if beside.is_file() else shutil.which("ruff")
    if found is None:
        pytest.fail(f"ruff is not installed: `{sys.executable} -m pip install ruff` (it is in requirements.txt)")
    return found


@pytest.mark.parametrize(
    "command,fix",
    [
        (["check", "."], "`ruff check --fix .`, then fix what remains by hand"),
        (["format", "--check", "."], "`ruff format .`"),
    ],
)
def test_tree_is_lint_clean(command, fix):
    result = subprocess.run([_ruff(), *command], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (
        f"`ruff {' '.join(command)}` failed in {REPO}; run {fix}:\n{result.stdout}{result.stderr}"
    )
