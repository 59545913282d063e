"""Process-creation events (Security 4688, Sysmon 1 mapped onto it) and the readers for event files."""

from procaudit.events.model import (
    FIELD_MIN_VERSION,
    FIELDS,
    PARAM_INDEX,
    VERSION_HOSTS,
    ProcessCreationEvent,
    make_event,
)
from procaudit.events.readers import ReadStats, detect_format, read_events

__all__ = [
    "FIELDS",
    "FIELD_MIN_VERSION",
    "PARAM_INDEX",
    "VERSION_HOSTS",
    "ProcessCreationEvent",
    "ReadStats",
    "detect_format",
    "make_event",
    "read_events",
]
