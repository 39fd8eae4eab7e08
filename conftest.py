"""Fixtures shared by the core's tests (tests/) and the projects' tests (projects/*/tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

# detectron2's reference data lives beside the repository: <repo>/../shared/reference
REFERENCE_DIR = Path(__file__).resolve().parent.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The folder of data made by detectron2 itself (its README says what each file holds); a test asking for
    it is skipped, saying so, where the folder is absent."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"detectron2 reference data not found at {REFERENCE_DIR}")
    return REFERENCE_DIR
