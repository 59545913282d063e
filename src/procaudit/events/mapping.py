"""Turn one decoded event (a dict, in any of the shapes we read) into a ``ProcessCreationEvent``.

Shapes:

- **evtx / Sigma regression JSON**: ``{"Event": {"System": {...}, "EventData": {...}}}`` as pyevtx-rs renders it;
- **flat JSON** (OTRF / NXLog / Logstash style): ``EventID``, ``Channel``/``SourceName``, ``Hostname`` and the
  ``EventData`` names at the top level (4688 names, or Sysmon names such as ``Image``);
- **Winlogbeat**: ``{"winlog": {"event_id", "provider_name", "computer_name", "record_id", "event_data"}}``.

Sysmon event 1 is mapped onto 4688 fields (it is read as an event version 2, the fields it cannot fill are
``None``):

============================  ==========================================================
Sysmon 1                      4688
============================  ==========================================================
Image                         NewProcessName
CommandLine                   CommandLine
ParentImage                   ParentProcessName
User ``DOMAIN\\user``          SubjectDomainName, SubjectUserName (split at the first ``\\``)
LogonId                       SubjectLogonId
ProcessId (decimal)           NewProcessId (hex, ``0x1f4`` as 4688 writes it)
ParentProcessId (decimal)     ProcessId (the creator, hex)
IntegrityLevel                MandatoryLabel SID (Low S-1-16-4096, Medium S-1-16-8192, High S-1-16-12288,
                              System S-1-16-16384, ...)
(none)                        SubjectUserSid, TokenElevationType, Target* stay ``None``
============================  ==========================================================

Sysmon's ``User`` is the account of the new process, while 4688's Subject is the account that created it;
they differ only when a process is started under another account (then 4688 fills Target*).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from procaudit.events.model import FIELDS, INTEGRITY_LEVEL_SIDS, ProcessCreationEvent, make_event

SECURITY_PROVIDER = "Microsoft-Windows-Security-Auditing"
SYSMON_PROVIDER = "Microsoft-Windows-Sysmon"
SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"


class NotProcessCreation(Exception):
    """The record is a valid event, but not a 4688 or a Sysmon event 1 (it is ignored, not an error)."""


class MalformedRecord(Exception):
    """The record cannot be read as an event (it is skipped and counted)."""


def _text(value: Any) -> str | None:
    """A field value as text: evtx renders numbers as numbers and ``{"#text": ...}`` for attributed values."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping) and "#text" in value:
        return _text(value["#text"])
    if isinstance(value, list):
        return " ".join(t for v in value if (t := _text(v)) is not None)
    return None


def _int(value: Any) -> int | None:
    text = _text(value)
    if text is None:
        return None
    text = text.strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _hex(value: Any) -> str | None:
    """Sysmon writes PIDs in decimal, 4688 in hex (``0x1f4``)."""
    number = _int(value)
    return None if number is None else hex(number)


def parse_time(value: Any) -> datetime | None:
    """Parse an event timestamp (ISO 8601, ``2020-07-22 03:27:52.809``, evtx's ``... UTC`` suffix) as UTC."""
    text = _text(value)
    if not text:
        return None
    text = text.strip().removesuffix(" UTC").replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Windows writes 7 fractional digits; datetime takes at most 6.
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        if end - dot > 7:
            text = text[: dot + 7] + text[end:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _classify(event_id: int | None, provider: str | None, channel: str | None, data: Mapping[str, Any]) -> str:
    """``security`` for 4688, ``sysmon`` for Sysmon 1; raise NotProcessCreation otherwise."""
    provider_l = (provider or "").lower()
    channel_l = (channel or "").lower()
    if event_id == 4688 and (
        provider_l == SECURITY_PROVIDER.lower() or (not provider_l and channel_l in ("", "security"))
    ):
        return "security"
    if event_id == 1 and (
        provider_l == SYSMON_PROVIDER.lower()
        or channel_l == SYSMON_CHANNEL.lower()
        or (not provider_l and not channel_l and "Image" in data)
    ):
        return "sysmon"
    raise NotProcessCreation


def _sysmon_fields(data: Mapping[str, Any]) -> dict[str, str | None]:
    user = _text(data.get("User"))
    domain, name = user.split("\\", 1) if user and "\\" in user else (None, user)
    integrity = _text(data.get("IntegrityLevel"))
    label = INTEGRITY_LEVEL_SIDS.get(integrity.strip().lower()) if integrity else None
    return {
        "NewProcessName": _text(data.get("Image")),
        "CommandLine": _text(data.get("CommandLine")),
        "ParentProcessName": _text(data.get("ParentImage")),
        "SubjectUserName": name,
        "SubjectDomainName": domain,
        "SubjectLogonId": _text(data.get("LogonId")),
        "NewProcessId": _hex(data.get("ProcessId")),
        "ProcessId": _hex(data.get("ParentProcessId")),
        "MandatoryLabel": label,
    }


def _security_fields(data: Mapping[str, Any]) -> dict[str, str | None]:
    return {name: _text(data.get(name)) for name in FIELDS if name in data}


def _build(
    kind: str,
    data: Mapping[str, Any],
    *,
    version: int | None,
    record_id: int | None,
    time: datetime | None,
    host: str | None,
    source_file: str,
) -> ProcessCreationEvent:
    if kind == "sysmon":
        return make_event(
            _sysmon_fields(data),
            event_version=2,
            record_id=record_id,
            time=time,
            host=host,
            source_file=source_file,
            origin="sysmon",
        )
    return make_event(
        _security_fields(data),
        event_version=version,
        record_id=record_id,
        time=time,
        host=host,
        source_file=source_file,
    )


def event_from_dict(doc: Any, *, source_file: str = "", record_number: int | None = None) -> ProcessCreationEvent:
    """Map one decoded event of any supported shape.

    Raises:
        NotProcessCreation: a valid event of another kind.
        MalformedRecord: not an event we can read.
    """
    if not isinstance(doc, Mapping):
        raise MalformedRecord("not a JSON object")
    if "Event" in doc and isinstance(doc["Event"], Mapping):
        event = doc["Event"]
        system = event.get("System")
        data = event.get("EventData")
        if not isinstance(system, Mapping):
            raise MalformedRecord("Event has no System block")
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise MalformedRecord("EventData is not an object")
        provider_node = system.get("Provider")
        attributes = provider_node.get("#attributes", {}) if isinstance(provider_node, Mapping) else {}
        provider = _text(attributes.get("Name")) if isinstance(attributes, Mapping) else None
        kind = _classify(_int(system.get("EventID")), provider, _text(system.get("Channel")), data)
        created = system.get("TimeCreated")
        created_attrs = created.get("#attributes", {}) if isinstance(created, Mapping) else {}
        return _build(
            kind,
            data,
            version=_int(system.get("Version")),
            record_id=_int(system.get("EventRecordID")) or record_number,
            time=parse_time(created_attrs.get("SystemTime") if isinstance(created_attrs, Mapping) else None),
            host=_text(system.get("Computer")),
            source_file=source_file,
        )
    if "winlog" in doc and isinstance(doc["winlog"], Mapping):
        winlog = doc["winlog"]
        data = winlog.get("event_data") or {}
        if not isinstance(data, Mapping):
            raise MalformedRecord("winlog.event_data is not an object")
        kind = _classify(
            _int(winlog.get("event_id")), _text(winlog.get("provider_name")), _text(winlog.get("channel")), data
        )
        return _build(
            kind,
            data,
            version=_int(winlog.get("version")),
            record_id=_int(winlog.get("record_id")) or record_number,
            time=parse_time(doc.get("@timestamp")),
            host=_text(winlog.get("computer_name")),
            source_file=source_file,
        )
    if "EventID" in doc:
        provider = _text(doc.get("SourceName")) or _text(doc.get("ProviderName"))
        kind = _classify(_int(doc.get("EventID")), provider, _text(doc.get("Channel")), doc)
        time = None
        for key in ("TimeCreated", "@timestamp", "UtcTime", "EventTime"):
            time = parse_time(doc.get(key))
            if time is not None:
                break
        host = _text(doc.get("Hostname")) or _text(doc.get("Computer")) or _text(doc.get("host"))
        version = _int(doc.get("Version")) if kind == "security" else None
        return _build(
            kind,
            doc,
            version=version,
            record_id=_int(doc.get("RecordNumber")) or _int(doc.get("EventRecordID")) or record_number,
            time=time,
            host=host,
            source_file=source_file,
        )
    raise MalformedRecord("no EventID, Event or winlog key: not a Windows event")
