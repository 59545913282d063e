"""Errors of the GPO renderer and the registry.pol reader/writer.

They live here rather than in ``procaudit.errors`` so this package owns its own failure modes; all of
them derive from ``UserInputError`` (exit code 2): they are caused by a value or a file the user gave.
"""

from __future__ import annotations

from procaudit.errors import UserInputError


class GpoSettingsError(UserInputError):
    """A GPO setting the user asked for cannot be used (display name, domain, log size)."""


class OutputDirError(UserInputError):
    """The output directory cannot be written: it is a file, or it is not empty and ``--force`` was not given."""


class PolFileError(UserInputError):
    """A registry.pol file is malformed, or an entry cannot be written in the PReg format."""
