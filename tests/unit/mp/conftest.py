"""Fixtures for the detection tests: the shared event samples (skipped with a reason when absent) and the rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from procaudit.detections.rules import CompiledRule, load_rules

REPO = Path(__file__).resolve().parents[3]


def shared_dir() -> Path:
    env = os.environ.get("PROCAUDIT_SHARED")
    return Path(env) if env else REPO.parent / "shared"


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
