"""Locate the content folders an administrator reviews (checks/, deploy/, gpo_templates/, detections/).

In a wheel they live in ``procaudit/content/``; in a source checkout (editable install, tests) they are
the top-level folders of the repository.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from procaudit.errors import ContentError

ContentFolder = Literal["checks", "deploy", "gpo_templates", "detections"]

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def content_root() -> Path:
    """The directory that holds the content folders."""
    installed = _PACKAGE_DIR / "content"
    if installed.is_dir():
        return installed
    checkout = _PACKAGE_DIR.parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout
    raise ContentError(f"cannot find procaudit's content folders next to {_PACKAGE_DIR}; reinstall the package")


def content_path(folder: ContentFolder, *parts: str) -> Path:
    """Path of a shipped content file or folder, e.g. ``content_path("checks", "Get-HostIdentity.ps1")``."""
    return content_root().joinpath(folder, *parts)
