"""Shared test fixtures: the reference data from outside this project."""

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_ROOT = PROJECT_ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference``. A test that needs it fails when it is missing: it never skips."""
    assert REFERENCE_ROOT.is_dir(), f"reference data missing: {REFERENCE_ROOT} (see DEVELOPERS.md)"
    return REFERENCE_ROOT
