"""One model of a process-creation event: Security event 4688, with Sysmon event 1 mapped onto it.

Field names are the 4688 ``EventData`` names. Their order is the ``Params/Param[N]`` order SCOM sees
(1-based), and each field has the first event version that carries it:

- version 0 (Vista / Server 2008): fields 1-8, no command line;
- version 1 (Windows 8.1 / Server 2012 R2, and Windows 7 / 2008 R2 with KB3004375): adds 9 CommandLine;
- version 2 (Windows 10 / Server 2016 and later): adds 10-15 (Target*, ParentProcessName, MandatoryLabel).
  Some v2 hosts write only the first 13 fields, so a v2 event can still lack ParentProcessName.

A field the event does not carry is ``None`` (never ``""``): a rule condition on it can never match, the
same as SCOM, whose ``Params/Param[14]`` does not exist on a version 1 event. An empty ``CommandLine``
(command-line auditing off) stays ``""``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

FIELDS: Final[tuple[str, ...]] = (
    "SubjectUserSid",
    "SubjectUserName",
    "SubjectDomainName",
    "SubjectLogonId",
    "NewProcessId",
    "NewProcessName",
    "TokenElevationType",
    "ProcessId",
    "CommandLine",
    "TargetUserSid",
    "TargetUserName",
    "TargetDomainName",
    "TargetLogonId",
    "ParentProcessName",
    "MandatoryLabel",
)

#: 1-based ``Params/Param[N]`` index of each field in a 4688 event as SCOM reads it.
PARAM_INDEX: Final[dict[str, int]] = {name: i + 1 for i, name in enumerate(FIELDS)}

#: First event version that carries each field.
FIELD_MIN_VERSION: Final[dict[str, int]] = {
    name: (0 if index <= 8 else 1 if index == 9 else 2) for name, index in PARAM_INDEX.items()
}

#: The newest 4688 version we know. Events that declare a higher version are read as this one.
MAX_EVENT_VERSION: Final = 2

#: What each event version means for an administrator.
VERSION_HOSTS: Final[dict[int, str]] = {
    0: "Windows Vista / Server 2008 (no command line)",
    1: "Windows 8.1 / Server 2012 R2, Windows 7 / 2008 R2 with KB3004375",
    2: "Windows 10 / Server 2016 and later",
}

#: Sysmon ``IntegrityLevel`` names and the mandatory-label SIDs 4688 writes for them.
INTEGRITY_LEVEL_SIDS: Final[dict[str, str]] = {
    "untrusted": "S-1-16-0",
    "low": "S-1-16-4096",
    "appcontainer": "S-1-16-4096",
    "medium": "S-1-16-8192",
    "mediumplus": "S-1-16-8448",
    "high": "S-1-16-12288",
    "system": "S-1-16-16384",
    "protected": "S-1-16-20480",
}

EventOrigin = Literal["security", "sysmon"]


@dataclass(slots=True, frozen=True)
class ProcessCreationEvent:
    """A process creation as Security event 4688 describes it.

    Attributes:
        record_id: ``EventRecordID`` (or the reader's record number when the source has none).
        time: ``TimeCreated`` in UTC, when the source has it.
        host: ``Computer`` / host name.
        event_version: 4688 event version (0, 1 or 2); mapped Sysmon events are version 2.
        source_file: the file the event was read from.
        origin: ``security`` for a real 4688, ``sysmon`` for a Sysmon event 1 mapped onto 4688 fields.
    """

    SubjectUserSid: str | None = None
    SubjectUserName: str | None = None
    SubjectDomainName: str | None = None
    SubjectLogonId: str | None = None
    NewProcessId: str | None = None
    NewProcessName: str | None = None
    TokenElevationType: str | None = None
    ProcessId: str | None = None
    CommandLine: str | None = None
    TargetUserSid: str | None = None
    TargetUserName: str | None = None
    TargetDomainName: str | None = None
    TargetLogonId: str | None = None
    ParentProcessName: str | None = None
    MandatoryLabel: str | None = None
    record_id: int | None = None
    time: datetime | None = None
    host: str | None = None
    event_version: int = MAX_EVENT_VERSION
    source_file: str = ""
    origin: EventOrigin = "security"

    def field(self, name: str) -> str | None:
        """Value of a 4688 field by name (``None`` when this event does not carry it)."""
        value: str | None = getattr(self, name)
        return value


def make_event(
    fields: dict[str, str | None],
    *,
    event_version: int | None,
    record_id: int | None = None,
    time: datetime | None = None,
    host: str | None = None,
    source_file: str = "",
    origin: EventOrigin = "security",
) -> ProcessCreationEvent:
    """Build an event from 4688 field values, applying the event-version rules.

    ``event_version=None`` infers it from the fields present (any v2 field -> 2, CommandLine -> 1,
    else 0). Fields newer than the event version are dropped, as SCOM would never see them.
    """
    if event_version is None:
        if any(fields.get(name) is not None for name in FIELDS[9:]):
            event_version = 2
        elif fields.get("CommandLine") is not None:
            event_version = 1
        else:
            event_version = 0
    version = max(0, min(event_version, MAX_EVENT_VERSION))
    get = fields.get
    v1 = version >= 1
    v2 = version >= 2
    return ProcessCreationEvent(
        SubjectUserSid=get("SubjectUserSid"),
        SubjectUserName=get("SubjectUserName"),
        SubjectDomainName=get("SubjectDomainName"),
        SubjectLogonId=get("SubjectLogonId"),
        NewProcessId=get("NewProcessId"),
        NewProcessName=get("NewProcessName"),
        TokenElevationType=get("TokenElevationType"),
        ProcessId=get("ProcessId"),
        CommandLine=get("CommandLine") if v1 else None,
        TargetUserSid=get("TargetUserSid") if v2 else None,
        TargetUserName=get("TargetUserName") if v2 else None,
        TargetDomainName=get("TargetDomainName") if v2 else None,
        TargetLogonId=get("TargetLogonId") if v2 else None,
        ParentProcessName=get("ParentProcessName") if v2 else None,
        MandatoryLabel=get("MandatoryLabel") if v2 else None,
        record_id=record_id,
        time=time,
        host=host,
        event_version=version,
        source_file=source_file,
        origin=origin,
    )
