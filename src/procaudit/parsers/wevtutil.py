"""Event log channel configuration: ``wevtutil gl <channel>``.

``wevtutil gl Security`` prints ``name: value`` lines, the ``logging:`` and ``publishing:`` groups indented
by two spaces::

    name: Security
    enabled: true
    type: Admin
    owningPublisher:
    isolation: Custom
    channelAccess: O:BAG:SYD:(A;;0xf0005;;;SY)(A;;0x5;;;BA)(A;;0x1;;;S-1-5-32-573)
    logging:
      logFileName: %SystemRoot%\\System32\\Winevt\\Logs\\Security.evtx
      retention: false
      autoBackup: false
      maxSize: 20971520
    publishing:
      fileMax: 1

What the captures in ``03_wevtutil_security_channel`` showed: prompt lines before and after (``PS C:\\...>``,
``> wevtutil gl Security``, a stray backtick before ``PS``); ``name:`` and ``logFileName`` echo the case the
user typed (``security``, ``security.evtx`` on a DC); documentation copies keep only the ``channelAccess``
line, with ``...``, ``[Output ommited]`` or ``# comment`` lines around it and a trailing space after the SDDL.
Such partial output parses: the fields it lacks are ``None``. The labels are not localized (ja-JP output is
English).
"""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from procaudit.errors import ParseError
from procaudit.parsers._text import decode_text
from procaudit.parsers.sddl import Principal, extra_readers, readers

# "name: value" with no space before the colon (Format-List has one, and a cmd prompt "C:\\>" has no space
# after it), optionally indented.
_LINE_RE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][A-Za-z0-9]*):(?:[ \t](?P<value>.*))?$")
_GROUPS: Final = ("logging", "publishing")
_SOURCE = "wevtutil gl output"

LogMode = Literal["Circular", "AutoBackup", "Retain"]


class ChannelConfig(BaseModel):
    """A channel's configuration as ``wevtutil gl`` prints it. Fields the text lacks are ``None``."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    enabled: bool | None = None
    type: str | None = None
    owning_publisher: str | None = None
    isolation: str | None = None
    channel_access: str | None = None
    """The channel ACL as SDDL."""
    log_file_name: str | None = None
    retention: bool | None = None
    """true: keep events when the log is full (do not overwrite)."""
    auto_backup: bool | None = None
    max_size: int | None = None
    """Maximum log size in bytes."""
    file_max: int | None = None
    other: dict[str, str] = {}
    """Lines with other keys (``level``, ``keywords``, ``bufferSize`` ... on other channel types), as text."""

    @property
    def log_mode(self) -> LogMode | None:
        """The mode ``Get-WinEvent -ListLog`` reports: Circular (overwrite), AutoBackup, Retain."""
        if self.retention is None or self.auto_backup is None:
            return None
        if not self.retention:
            return "Circular"
        return "AutoBackup" if self.auto_backup else "Retain"

    def readers(self) -> list[Principal] | None:
        """Who may read the channel (see ``sddl.readers``); ``None`` without ``channelAccess``."""
        return readers(self.channel_access) if self.channel_access else None

    def extra_readers(self) -> list[Principal] | None:
        """Readers beyond the Windows default Security channel ACL; ``None`` without ``channelAccess``."""
        return extra_readers(self.channel_access) if self.channel_access else None


_FIELDS: Final[dict[str, str]] = {
    "name": "name",
    "enabled": "enabled",
    "type": "type",
    "owningPublisher": "owning_publisher",
    "isolation": "isolation",
    "channelAccess": "channel_access",
    "logFileName": "log_file_name",
    "retention": "retention",
    "autoBackup": "auto_backup",
    "maxSize": "max_size",
    "fileMax": "file_max",
}
_BOOLS: Final = frozenset({"enabled", "retention", "auto_backup"})
_INTS: Final = frozenset({"max_size", "file_max"})


def parse_wevtutil_gl(data: str | bytes, *, source: str = _SOURCE) -> ChannelConfig:
    """Parse ``wevtutil gl <channel>`` text (the first channel in it), prompts and partial copies included.

    Raises:
        ParseError: no ``wevtutil gl`` line at all, or a boolean / number field that is not one (with line).
    """
    text = decode_text(data, source=source)
    values: dict[str, object] = {}
    other: dict[str, str] = {}
    seen_any = False
    for number, raw in enumerate(text.splitlines(), start=1):
        match = _LINE_RE.match(raw.rstrip())
        if not match:
            continue
        key = match.group("key")
        value = (match.group("value") or "").strip()
        if key == "name" and "name" in values:
            break  # a second channel's output starts here
        seen_any = True
        if key in _GROUPS and not value:
            continue
        field = _FIELDS.get(key)
        if field is None:
            other[key] = value
            continue
        if field in _BOOLS:
            values[field] = _bool(value, key, number, source)
        elif field in _INTS:
            if not value.isdigit():
                raise ParseError(f"{key}: {value!r} is not a number", source=source, line=number)
            values[field] = int(value)
        else:
            values[field] = value or None
    if not seen_any:
        raise ParseError("no 'name: value' line of `wevtutil gl` output found", source=source)
    return ChannelConfig.model_validate({**values, "other": other})


def _bool(value: str, key: str, line: int, source: str) -> bool:
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    raise ParseError(f"{key}: {value!r} is neither true nor false", source=source, line=line)
