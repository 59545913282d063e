"""Shared fixtures: where ``../shared`` (design, reference, real Windows captures) is.

``shared/`` sits beside the repository (``<repo>/../shared``); ``PROCAUDIT_SHARED`` overrides that. In a git
worktree the repository's ``..`` is not the main checkout's, so the main checkout's sibling is tried too
(found through the worktree's ``.git`` file, never by guessing). Tests that need it skip, with the reason,
when it is absent; a capture that is missing from a present ``shared/`` fails the test instead, so a renamed
file cannot turn a test into a silent skip.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _worktree_main_checkout(repo: Path) -> Path | None:
    dot_git = repo / ".git"
    if not dot_git.is_file():
        return None
    text = dot_git.read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir:"):
        return None
    gitdir = (repo / text.removeprefix("gitdir:").strip()).resolve()
    commondir_file = gitdir / "commondir"
    if not commondir_file.is_file():
        return None
    common = (gitdir / commondir_file.read_text(encoding="utf-8").strip()).resolve()
    return common.parent if common.name == ".git" else None


def find_shared_dir() -> Path | None:
    """The ``shared`` directory, or ``None`` when there is none."""
    override = os.environ.get("PROCAUDIT_SHARED")
    if override:
        path = Path(override)
        return path if path.is_dir() else None
    candidates = [REPO.parent / "shared"]
    main = _worktree_main_checkout(REPO)
    if main is not None:
        candidates.append(main.parent / "shared")
    return next((c for c in candidates if c.is_dir()), None)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``<repo>/../shared`` (or ``$PROCAUDIT_SHARED``); skips the test when it is absent."""
    path = find_shared_dir()
    if path is None:
        pytest.skip("../shared is absent (set PROCAUDIT_SHARED to its path): real Windows captures not available")
    return path


@pytest.fixture(scope="session")
def shared_data(shared_dir: Path) -> Path:
    """``shared/data``: the real captured Windows outputs and event samples."""
    path = shared_dir / "data"
    if not path.is_dir():
        pytest.skip(f"{path} is absent: real Windows captures not available")
    return path


@pytest.fixture(scope="session")
def windows_capture(shared_data: Path) -> Callable[[str], Path]:
    """``windows_capture("01_auditpol/x.csv")`` -> path of a file under ``shared/data/windows``.

    Fails (does not skip) when ``shared/`` is there but the file is not: a test must never pass by not
    finding its data.
    """
    root = shared_data / "windows"

    def capture(relpath: str) -> Path:
        path = root / relpath
        if not path.is_file():
            pytest.fail(f"capture {relpath} is missing from {root}; see its MANIFEST.md")
        return path

    return capture
