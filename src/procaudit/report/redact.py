"""Redaction of what must not leave a report by default: command lines can hold passwords and tokens."""

from __future__ import annotations


def redact_command_line(text: str) -> str:
    """A placeholder that says a command line was there (and how long), never what it said."""
    if not text:
        return text
    return f"[redacted, {len(text)} characters]"
