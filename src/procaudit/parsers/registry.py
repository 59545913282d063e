"""Registry text views, as a tested fallback until the probe's registry JSON shape is decided.

Two views, both in ``05_registry_audit``:

- ``reg query <key>``: a line with the key (in the case the user typed it), then one line per value,
  ``    <name>    <REG_TYPE>    <data>`` with four-space separators. ``reg add`` echoes and prompts around it
  are ignored.
- ``Get-ItemProperty <key> | Format-List``: ``Name : Value`` lines plus PowerShell's ``PSPath``,
  ``PSParentPath``, ``PSChildName``, ``PSDrive``, ``PSProvider``. No types; the key comes from PSPath.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import BaseModel, ConfigDict

from procaudit.errors import ParseError
from procaudit.parsers._text import decode_text, parse_format_list

_VALUE_RE = re.compile(r"^ {4}(?P<name>.+?) {4}(?P<type>REG_[A-Z_]+)(?: {4}(?P<data>.*))?$")
_PS_PROPERTIES: Final = frozenset({"PSPath", "PSParentPath", "PSChildName", "PSDrive", "PSProvider"})
_PROVIDER_PREFIX: Final = "Microsoft.PowerShell.Core\\Registry::"


class RegValue(BaseModel):
    """A value as text. ``type`` is ``REG_DWORD`` etc., ``None`` when the view does not show it."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str | None
    data: str
    line: int

    def as_int(self) -> int | None:
        """The value as a number when the whole text is one (``0x1``, ``1``); ``None`` otherwise."""
        text = self.data.strip()
        if re.fullmatch(r"0[xX][0-9A-Fa-f]+|\d+", text):
            return int(text, 0) if text.lower().startswith("0x") else int(text)
        return None


class RegKey(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    values: dict[str, RegValue]

    def value(self, name: str) -> RegValue | None:
        """The value ``name`` (registry names are case-insensitive)."""
        return next((v for k, v in self.values.items() if k.lower() == name.lower()), None)


def parse_reg_query(data: str | bytes, *, source: str = "reg query output") -> list[RegKey]:
    """Keys and values printed by ``reg query`` (one key, or several with ``/s``).

    Raises:
        ParseError: a value line before any key line, or no key at all.
    """
    text = decode_text(data, source=source)
    keys: list[tuple[str, dict[str, RegValue]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if line.upper().startswith("HKEY_"):
            keys.append((line.strip(), {}))
            continue
        match = _VALUE_RE.match(line)
        if not match:
            continue
        if not keys:
            raise ParseError("a value line comes before any HKEY_ key line", source=source, line=number)
        name = match.group("name")
        keys[-1][1][name] = RegValue(name=name, type=match.group("type"), data=match.group("data") or "", line=number)
    if not keys:
        raise ParseError("no HKEY_ key line found", source=source)
    return [RegKey(path=path, values=values) for path, values in keys]


def parse_item_property_list(data: str | bytes, *, source: str = "Get-ItemProperty | Format-List") -> RegKey:
    """The first ``Get-ItemProperty`` record in Format-List form (the one with ``PSPath``, which gives the key).

    Raises:
        ParseError: no ``Name : Value`` record.
    """
    text = decode_text(data, source=source)
    # PowerShell error records also look like "Name : text" ("Get-ItemProperty : Cannot find path ..."); a
    # property listing of a registry key always carries PSPath, so that is what marks the record.
    record = next((r for r in parse_format_list(text) if "PSPath" in r), None)
    if record is None:
        raise ParseError("no 'Name : Value' record with a PSPath property found", source=source)
    lines = {name: number for number, name in _first_lines(text, record)}
    path = record["PSPath"].removeprefix(_PROVIDER_PREFIX)
    values = {
        name: RegValue(name=name, type=None, data=value, line=lines.get(name, 0))
        for name, value in record.items()
        if name not in _PS_PROPERTIES
    }
    return RegKey(path=path, values=values)


def _first_lines(text: str, record: dict[str, str]) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.split(" ", 1)[0]
        if name in record and all(n != name for _, n in found):
            found.append((number, name))
    return found
