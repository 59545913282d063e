"""Small text helpers shared by the parsers: decoding, GUIDs, PowerShell list and table views.

Windows hands us text in several encodings (``GptTmpl.inf`` and GPMC reports are UTF-16LE with a BOM,
``audit.csv`` is UTF-8, a PSRP string is already ``str``) and PowerShell's console views (``Format-List``,
``Format-Table``) wrap, pad and truncate. These helpers deal with that once so each parser stays about its
own format.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from procaudit.errors import ParseError

# Format-List pads every name to the longest one and writes " : ", so at least one space precedes the colon.
# ``wevtutil gl`` writes "name: value" with none, which keeps the two formats apart.
_FL_LINE = re.compile(r"^([A-Za-z_][\w.\-]*)( +):(?: (.*))?$")
_GUID_RE = re.compile(r"^\{?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}?$")


def decode_text(data: str | bytes, *, source: str) -> str:
    """Return ``data`` as ``str`` without a BOM.

    Bytes are decoded by their BOM (UTF-8, UTF-16LE, UTF-16BE); without one, a NUL in every second byte
    means UTF-16LE (what ``Out-File`` on Windows PowerShell writes when a BOM got lost), anything else is
    UTF-8. Bytes that are none of these raise ``ParseError``.
    """
    if isinstance(data, str):
        return data[1:] if data.startswith("\ufeff") else data
    try:
        if data.startswith(codecs.BOM_UTF8):
            return data[len(codecs.BOM_UTF8) :].decode("utf-8")
        if data.startswith(codecs.BOM_UTF16_LE):
            return data[2:].decode("utf-16-le")
        if data.startswith(codecs.BOM_UTF16_BE):
            return data[2:].decode("utf-16-be")
        sample = data[:200]
        if len(sample) >= 4 and sample[1::2].count(0) >= len(sample) // 4:
            return data.decode("utf-16-le")
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"cannot decode the text ({exc.reason} at byte {exc.start})", source=source) from exc


def normalize_guid(text: str) -> str | None:
    """``{0cce922b-...}`` or ``0CCE922B-...`` to ``{0CCE922B-...}``; ``None`` when ``text`` is no GUID."""
    match = _GUID_RE.match(text.strip())
    return "{" + match.group(1).upper() + "}" if match else None


def parse_format_list(text: str) -> list[dict[str, str]]:
    """Parse PowerShell ``Format-List`` output (``Name : Value`` lines) into one dict per record.

    Records are separated by blank lines. A value that the console wrapped continues on the next line,
    indented to the value column; it is joined back without a separator (the console breaks inside
    words). Lines that are neither (prompts, commands) end the current record.
    """
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_key: str | None = None
    value_col = 0
    for raw in text.splitlines():
        line = raw.rstrip()
        match = _FL_LINE.match(line)
        if match:
            key = match.group(1)
            current[key] = match.group(3) or ""
            last_key = key
            value_col = len(match.group(1)) + len(match.group(2)) + 2
            continue
        if last_key is not None and line and value_col and raw[:value_col].strip() == "" and len(raw) > value_col:
            current[last_key] += line.strip()
            continue
        if current:
            records.append(current)
            current = {}
        last_key = None
    if current:
        records.append(current)
    return records


@dataclass(frozen=True)
class TableRow:
    """One data row of a PowerShell table view: its 1-based line number and its cells, left to right."""

    line: int
    cells: tuple[str, ...]


def parse_format_table(text: str) -> tuple[tuple[str, ...], list[TableRow]]:
    """Parse the first PowerShell ``Format-Table`` view in ``text``: (header names, rows).

    Columns are found from the dashes line under the header: a cell runs from the start of its dash run
    to the start of the next one, the last cell to the end of the line. This holds for left- and
    right-aligned columns and for cells the console cut with ``...``. Rows end at the first blank line
    or prompt after the table. The header names are sliced the same way, so a header that the source cut
    at its left edge yields partial names; callers that know the columns should go by position.
    """
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.fullmatch(r"\s*-+(\s+-+)*\s*", line) and line.strip():
            starts = [m.start() for m in re.finditer(r"-+", line)]
            header = lines[index - 1] if index > 0 else ""
            names = _slice(header, starts)
            rows: list[TableRow] = []
            for number, row in enumerate(lines[index + 1 :], start=index + 2):
                if not row.strip() or row.startswith("PS ") or re.match(r"^[A-Za-z]:\\.*>", row):
                    break
                rows.append(TableRow(number, _slice(row, starts)))
            return names, rows
    return (), []


def _slice(line: str, starts: list[int]) -> tuple[str, ...]:
    cells = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(line)
        cells.append(line[start:end].strip())
    return tuple(cells)
