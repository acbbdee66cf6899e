"""Shared test fixtures: the reference data from outside this project, and the Lava environment."""

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_ROOT = PROJECT_ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference``. A test that needs it fails when it is missing: it never skips."""
    assert REFERENCE_ROOT.is_dir(), f"reference data missing: {REFERENCE_ROOT} (see DEVELOPERS.md)"
    return REFERENCE_ROOT


@pytest.fixture(scope="session")
def lava_python() -> str:
    """The Lava worker's interpreter. Outside CI a missing environment skips, naming the set-up
    command; under CI (CI=true) it fails: CI must run the Lava tests for real."""
    from snn_deploy.targets import lava
    from snn_deploy.targets.backends import BackendUnavailable

    try:
        return lava.worker_python()
    except BackendUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the Lava tests: {exc}")
        pytest.skip(f"no Lava environment (set it up with ./tools/setup-lava; under CI this fails): {exc}")
