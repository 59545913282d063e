"""Small text helpers shared by the parsers: decoding and GUIDs.

Windows hands us text in several encodings (``GptTmpl.inf`` and GPMC reports are UTF-16LE with a BOM,
``audit.csv`` is UTF-8, a PSRP string is already ``str``). These helpers deal with that once so each parser
stays about its own format.
"""

from __future__ import annotations

import codecs
import re

from procaudit.errors import ParseError

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
