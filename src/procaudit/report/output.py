"""Where rendered output goes: stdout, or a file written atomically."""

from __future__ import annotations

import io
import sys
from enum import StrEnum
from pathlib import Path

from rich.console import Console, RenderableType

from procaudit.fsutil import atomic_write


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


def emit(text: str | bytes, output: Path | None) -> None:
    """Write ``text`` to ``output`` (atomically, 0600) or to stdout."""
    if output is not None:
        atomic_write(output, text)
        return
    if isinstance(text, bytes):
        sys.stdout.buffer.write(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def render_rich(renderable: RenderableType, *, width: int = 160) -> str:
    """Plain text of a Rich renderable, for files and pipes (no colour codes)."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(renderable)
    return buffer.getvalue()


def print_rich(renderable: RenderableType, output: Path | None) -> None:
    """A table to the terminal in colour, or as plain text to a file or pipe."""
    if output is None and sys.stdout.isatty():
        Console().print(renderable)
    else:
        emit(render_rich(renderable), output)
