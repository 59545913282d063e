"""Fixtures of the GPO tests: the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _shared_root() -> Path:
    return Path(os.environ.get("PROCAUDIT_SHARED") or REPO.parent / "shared")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (or ``$PROCAUDIT_SHARED``); the test skips when it is absent."""
    root = _shared_root()
    if not (root / "reference" / "gpo_audit.md").is_file():
        pytest.skip(f"shared data not found at {root} (set PROCAUDIT_SHARED to the shared folder)")
    return root
