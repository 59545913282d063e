"""Fixtures for the detection tests: the shared event samples (skipped with a reason when absent) and the rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from procaudit.detections.rules import CompiledRule, load_rules
from tests.conftest import find_shared_dir

REPO = Path(__file__).resolve().parents[3]


def shared_dir() -> Path:
    """``../shared`` (or ``$PROCAUDIT_SHARED``, or the main checkout's sibling from a worktree)."""
    return find_shared_dir() or REPO.parent / "shared"


@pytest.fixture(scope="session")
def events_dir() -> Path:
    path = shared_dir() / "data" / "events"
    if not path.is_dir():
        pytest.skip(f"shared event samples not found at {path} (set PROCAUDIT_SHARED)")
    return path


@pytest.fixture(scope="session")
def windows_dir() -> Path:
    path = shared_dir() / "data" / "windows"
    if not path.is_dir():
        pytest.skip(f"shared Windows captures not found at {path} (set PROCAUDIT_SHARED)")
    return path


@pytest.fixture(scope="session")
def rules() -> list[CompiledRule]:
    return load_rules(REPO / "detections")
