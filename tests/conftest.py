"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

#: The checkout's root (this file is ``<root>/tests/conftest.py``).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Small files cut from the public traces, committed with the tests.
FIXTURES = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def shared_traces() -> Path:
    """The full public traces, kept next to the checkout in ``../shared/traces``.

    They are too large to commit, so tests that need them are skipped where they are absent.
    """
    traces = (REPO_ROOT / ".." / "shared" / "traces").resolve()
    if not traces.is_dir():
        pytest.skip(f"the full public traces are not present at {traces}")
    return traces
