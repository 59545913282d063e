"""Security templates: ``secedit /export /areas SECURITYPOLICY`` output and a GPO's ``GptTmpl.inf``.

Format (MS-GPSB 2.2): UTF-16LE with a BOM and CRLF, ``[Section]`` headers, ``key = value`` lines (security
settings, with spaces around ``=``) or ``key=value`` (``[Registry Values]``), ``;`` comments, and lines without
``=`` in some sections (``[Service General Setting]``: ``"AppIDSvc",2,""``). Keys are case-insensitive.

Typed accessors cover what audit readiness needs:

- ``[Event Audit]``: the legacy category policy (``AuditProcessTracking = 3``), 0 none, 1 success,
  2 failure, 3 both. When applied, a category overwrites all its subcategories (see
  ``auditpol.LEGACY_CATEGORIES``) unless SCENoApplyLegacyAuditPolicy is 1.
- ``[Registry Values]``: ``MACHINE\\<key path>\\<value name>=<type>,<data>`` where type is a registry type
  number (1 REG_SZ, 4 REG_DWORD, 7 REG_MULTI_SZ, ...), e.g.
  ``MACHINE\\System\\CurrentControlSet\\Control\\Lsa\\SCENoApplyLegacyAuditPolicy=4,1``.
- ``[Security Log]`` (MS-GPSB 2.2.3): ``MaximumLogSize`` (KB), ``AuditLogRetentionPeriod``, ``RetentionDays``.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import BaseModel, ConfigDict

from procaudit.errors import ParseError
from procaudit.parsers._text import decode_text

SCE_NO_APPLY_LEGACY_AUDIT_POLICY: Final = r"MACHINE\System\CurrentControlSet\Control\Lsa\SCENoApplyLegacyAuditPolicy"

REG_SZ: Final = 1
REG_EXPAND_SZ: Final = 2
REG_BINARY: Final = 3
REG_DWORD: Final = 4
REG_MULTI_SZ: Final = 7

_SECTION_RE = re.compile(r"^\[(?P<name>[^\]]+)\]$")
_SOURCE = "security template (secedit /export or GptTmpl.inf)"


class InfEntry(BaseModel):
    """One line of a section. ``key`` is ``None`` for lines without ``=``; then ``value`` is the whole line."""

    model_config = ConfigDict(frozen=True)

    line: int
    key: str | None
    value: str


class RegistryValue(BaseModel):
    """A ``[Registry Values]`` entry: ``path`` as written (``MACHINE\\...\\Name``), registry type and raw data."""

    model_config = ConfigDict(frozen=True)

    line: int
    path: str
    type: int
    data: str

    def as_int(self) -> int | None:
        """The data as a number for REG_DWORD (and numeric strings); ``None`` if it is not one."""
        text = self.data.strip().strip('"')
        try:
            return int(text, 0)
        except ValueError:
            return None

    def as_text(self) -> str:
        """The data with the quotes a string value is written in removed."""
        text = self.data.strip()
        return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


class SecurityTemplate(BaseModel):
    """A parsed security template: section name -> entries, in file order."""

    model_config = ConfigDict(frozen=True)

    sections: dict[str, tuple[InfEntry, ...]]
    source: str = _SOURCE

    def section(self, name: str) -> tuple[InfEntry, ...]:
        """Entries of section ``name`` (any case); empty when the section is absent."""
        for key, entries in self.sections.items():
            if key.lower() == name.lower():
                return entries
        return ()

    def has_section(self, name: str) -> bool:
        return any(key.lower() == name.lower() for key in self.sections)

    def values(self, name: str) -> dict[str, str]:
        """``key -> value`` of a section; a key that repeats keeps its last value, as secedit applies it."""
        return {e.key: e.value for e in self.section(name) if e.key is not None}

    def get(self, section: str, key: str) -> str | None:
        for entry in reversed(self.section(section)):
            if entry.key is not None and entry.key.lower() == key.lower():
                return entry.value
        return None

    def event_audit(self) -> dict[str, int]:
        """``[Event Audit]`` as ``{"AuditProcessTracking": 3, ...}``; empty when the template sets none.

        Raises:
            ParseError: a value is not 0-3 (with its line).
        """
        result: dict[str, int] = {}
        for entry in self.section("Event Audit"):
            if entry.key is None:
                raise ParseError(f"[Event Audit] line {entry.value!r} has no '='", source=self.source, line=entry.line)
            text = entry.value.strip()
            if text not in ("0", "1", "2", "3"):
                raise ParseError(
                    f"[Event Audit] {entry.key} = {text!r} is not 0-3", source=self.source, line=entry.line
                )
            result[entry.key] = int(text)
        return result

    def registry_values(self) -> dict[str, RegistryValue]:
        """``[Registry Values]`` keyed by path as written; look one up with ``registry_value``.

        Raises:
            ParseError: an entry is not ``<path>=<type>,<data>`` (with its line).
        """
        result: dict[str, RegistryValue] = {}
        for entry in self.section("Registry Values"):
            if entry.key is None:
                raise ParseError(
                    f"[Registry Values] line {entry.value!r} has no '='", source=self.source, line=entry.line
                )
            type_text, sep, data = entry.value.partition(",")
            if not type_text.strip().isdigit():
                raise ParseError(
                    f"[Registry Values] {entry.key}: {entry.value!r} is not <type>,<data>",
                    source=self.source,
                    line=entry.line,
                )
            result[entry.key] = RegistryValue(
                line=entry.line, path=entry.key, type=int(type_text), data=data if sep else ""
            )
        return result

    def registry_value(self, path: str) -> RegistryValue | None:
        """The ``[Registry Values]`` entry for ``path`` (any case, ``MACHINE\\`` prefix optional)."""
        wanted = _registry_key(path)
        found = None
        for key, value in self.registry_values().items():
            if _registry_key(key) == wanted:
                found = value
        return found

    @property
    def force_subcategory(self) -> int | None:
        """SCENoApplyLegacyAuditPolicy ("Audit: Force audit policy subcategory settings"): 1 on, 0 off, None unset."""
        value = self.registry_value(SCE_NO_APPLY_LEGACY_AUDIT_POLICY)
        return value.as_int() if value else None

    def log_settings(self, log: str = "Security") -> dict[str, int]:
        """``[<log> Log]`` numbers, e.g. ``{"MaximumLogSize": 16384, "AuditLogRetentionPeriod": 1}``.

        Raises:
            ParseError: a value is not a number (with its line).
        """
        result: dict[str, int] = {}
        for entry in self.section(f"{log} Log"):
            if entry.key is None:
                continue
            try:
                result[entry.key] = int(entry.value.strip())
            except ValueError:
                raise ParseError(
                    f"[{log} Log] {entry.key} = {entry.value!r} is not a number", source=self.source, line=entry.line
                ) from None
        return result


def _registry_key(path: str) -> str:
    lowered = path.strip().lower()
    return lowered[len("machine\\") :] if lowered.startswith("machine\\") else lowered


def parse_security_template(data: str | bytes, *, source: str = _SOURCE) -> SecurityTemplate:
    """Parse security-template INF text (``str``, or bytes in UTF-16LE with BOM or UTF-8).

    Raises:
        ParseError: text before the first section, or a section header that is not closed (with its line).
    """
    text = decode_text(data, source=source)
    sections: dict[str, list[InfEntry]] = {}
    current: list[InfEntry] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            match = _SECTION_RE.match(line)
            if not match:
                raise ParseError(f"section header {line!r} is not closed with ']'", source=source, line=number)
            # A repeated section continues the first one, which is how the INF APIs read it.
            current = sections.setdefault(match.group("name").strip(), [])
            continue
        if current is None:
            raise ParseError(f"{line!r} comes before the first [section]", source=source, line=number)
        key, sep, value = line.partition("=")
        if sep:
            current.append(InfEntry(line=number, key=key.strip(), value=value.strip()))
        else:
            current.append(InfEntry(line=number, key=None, value=line))
    return SecurityTemplate(sections={name: tuple(entries) for name, entries in sections.items()}, source=source)
