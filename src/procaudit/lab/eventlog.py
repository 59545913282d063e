"""The lab's Security log: what a host has logged, computed from its activity and its audit history.

Nothing is stored per event. A host starts processes at a deterministic, role-shaped daily rhythm; its
``timeline`` says when Process Creation auditing and command-line inclusion were effective. From those,
the number of 4688 (and 4689, Sysmon 1) records in any hour is computed, and the log's overwrite-as-needed
retention bounds what can still be read - as on Windows, where a 20 MB log on a busy server holds hours,
not days. This is the ground truth the estimate is tested against, for a hundred events or a billion.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from procaudit.lab.model import LabHost, RecordedEvent

HOUR = timedelta(hours=1)
# Bytes per record on disk for the rest of the Security traffic (logon/logoff, privilege use, ...).
OTHER_RECORD_SIZE = 600
# Everything before this is outside any window an estimate asks for.
_HISTORY = timedelta(days=400)


@dataclass(frozen=True)
class Segment:
    """From ``start`` on, was 4688 logged, and with the command line?"""

    start: datetime
    audit: bool
    cmdline: bool


def _weights(role: str) -> tuple[list[float], float]:
    """Share of a day's process starts per hour of day, and the weekend factor, by role."""
    if role == "dc":
        business, weekend = 0.5, 0.9  # services and logons all day long
    elif role == "rds":
        business, weekend = 0.85, 0.2  # users' sessions
    elif role == "workstation":
        business, weekend = 0.8, 0.1
    else:
        business, weekend = 0.6, 0.7  # member servers: scheduled jobs and service churn
    per_hour = [business / 10 if 8 <= h < 18 else (1 - business) / 14 for h in range(24)]
    return per_hour, weekend


def _noise(seed: int, hour_index: int) -> float:
    """A deterministic factor in [0.85, 1.15] for one hour of one host."""
    digest = hashlib.blake2b(f"{seed}:{hour_index}".encode(), digest_size=2).digest()
    return 0.85 + 0.3 * int.from_bytes(digest, "big") / 0xFFFF


def starts_in_hour(host: LabHost, hour: datetime) -> float:
    """Process starts on ``host`` in the hour beginning at ``hour`` (UTC, treated as local time)."""
    per_hour, weekend = _weights(host.role)
    # Normalise so an average week day-and-weekend mix still yields per_day on average.
    week_mean = (5 + 2 * weekend) / 7
    day_factor = (weekend if hour.weekday() >= 5 else 1.0) / week_mean
    index = int(hour.timestamp() // 3600)
    return host.activity.per_day * per_hour[hour.hour] * day_factor * _noise(host.activity.seed, index)


def timeline(host: LabHost) -> list[Segment]:
    """The host's audit history, oldest first (initialised from its profile on first use)."""
    if not host.audit_timeline:
        since = host.logging_since.get(4688)
        start = datetime.now(UTC) - _HISTORY
        cmdline = host.cmdline_enabled() == 1 and host.supports_cmdline()
        if since is None:
            host.audit_timeline.append(Segment(start, False, False))
        else:
            host.audit_timeline.extend([Segment(start, False, False), Segment(since, True, cmdline)])
    return host.audit_timeline


def note_state_change(host: LabHost, now: datetime | None = None) -> None:
    """Record that what is logged may have changed (after a policy change or refresh)."""
    now = now or datetime.now(UTC)
    segments = timeline(host)
    audit = host.audit_success_effective()
    cmdline = audit and host.cmdline_enabled() == 1 and host.supports_cmdline()
    if (segments[-1].audit, segments[-1].cmdline) != (audit, cmdline):
        segments.append(Segment(now, audit, cmdline))


def _segment_at(segments: list[Segment], moment: datetime) -> Segment:
    current = segments[0]
    for segment in segments:
        if segment.start <= moment:
            current = segment
        else:
            break
    return current


def _hours(start: datetime, end: datetime) -> list[datetime]:
    first = start.replace(minute=0, second=0, microsecond=0)
    hours = []
    while first < end:
        hours.append(first)
        first += HOUR
    return hours


def logged_in_hour(host: LabHost, event_id: int, hour: datetime) -> tuple[float, float]:
    """(events, of which with a command line) of ``event_id`` written in that hour."""
    starts = starts_in_hour(host, hour)
    if event_id == 4688:
        segment = _segment_at(timeline(host), hour + HOUR / 2)
        return (starts, starts if segment.cmdline else 0.0) if segment.audit else (0.0, 0.0)
    since = host.logging_since.get(event_id)
    if since is not None and hour >= since:
        return starts, 0.0
    return 0.0, 0.0


def _bytes_per_hour(host: LabHost, hour: datetime) -> float:
    process, _ = logged_in_hour(host, 4688, hour)
    terminations, _ = logged_in_hour(host, 4689, hour)
    other = host.security_log.other_events_per_day / 24
    return (process + terminations) * host.security_log.record_size + other * OTHER_RECORD_SIZE


def oldest_retained(host: LabHost, now: datetime | None = None) -> datetime:
    """The oldest record still in the Security log: overwrite-as-needed keeps the newest max_size bytes."""
    return _oldest(lambda hour: _bytes_per_hour(host, hour), host.security_log.max_size, now or datetime.now(UTC))


def _oldest(bytes_per_hour: Callable[[datetime], float], max_size: int, now: datetime) -> datetime:
    """Walk back from ``now`` until the newest ``max_size`` bytes are used up: there is the oldest record."""
    budget = float(max_size)
    hour = now.replace(minute=0, second=0, microsecond=0)
    fraction = (now - hour) / HOUR
    used = bytes_per_hour(hour) * fraction
    floor = now - _HISTORY
    while used < budget and hour > floor:
        hour -= HOUR
        used += bytes_per_hour(hour)
    if used <= budget:
        return floor
    overshoot = (used - budget) / max(bytes_per_hour(hour), 1.0)
    return hour + HOUR * min(overshoot, 1.0)


def hourly_counts(host: LabHost, event_id: int, start: datetime, end: datetime) -> list[tuple[datetime, int, int]]:
    """Per hour in [start, end): (hour, events still in the log, of which with a command line).

    Hours older than the log's oldest record count zero, as on a host whose log wrapped.
    """
    oldest = oldest_retained(host, end)
    rows = []
    for hour in _hours(start, end):
        lo, hi = max(hour, start, oldest), min(hour + HOUR, end)
        if hi <= lo:
            rows.append((hour, 0, 0))
            continue
        share = (hi - lo) / HOUR
        events, cmdline = logged_in_hour(host, event_id, hour)
        rows.append((hour, round(events * share), round(cmdline * share)))
    return rows


@dataclass(frozen=True)
class LogStats:
    file_size: int
    record_count: int
    oldest: datetime


def log_stats(host: LabHost, now: datetime | None = None) -> LogStats:
    now = now or datetime.now(UTC)
    oldest = oldest_retained(host, now)
    size = 0.0
    records = 0.0
    for hour in _hours(oldest, now):
        lo, hi = max(hour, oldest), min(hour + HOUR, now)
        share = (hi - lo) / HOUR
        process, _ = logged_in_hour(host, 4688, hour)
        terminations, _ = logged_in_hour(host, 4689, hour)
        other = host.security_log.other_events_per_day / 24
        records += (process + terminations + other) * share
        size += _bytes_per_hour(host, hour) * share
    records += len(host.events)
    file_size = min(int(size) + 69632, host.security_log.max_size)  # the .evtx header and first chunk
    return LogStats(file_size=file_size, record_count=int(records), oldest=oldest)


def record_process_start(host: LabHost, fields: dict[str, str], now: datetime | None = None) -> RecordedEvent | None:
    """A process starts now: append its 4688 if auditing is effective, blanking the command line if not included."""
    now = now or datetime.now(UTC)
    if not host.audit_success_effective():
        return None
    fields = dict(fields)
    if not (host.cmdline_enabled() == 1 and host.supports_cmdline()):
        fields["CommandLine"] = ""
    if host.event_version() < 1:
        fields.pop("CommandLine", None)  # version 0 events have no CommandLine field at all
    if host.event_version() < 2:
        for name in (
            "TargetUserSid",
            "TargetUserName",
            "TargetDomainName",
            "TargetLogonId",
            "ParentProcessName",
            "MandatoryLabel",
        ):
            fields.pop(name, None)
    event = RecordedEvent(event_id=4688, time=now, record_id=_next_record_id(host), fields=fields)
    host.events.append(event)
    return event


def _next_record_id(host: LabHost) -> int:
    base = int(log_stats(host).record_count) + 1000
    return base + len(host.events)


# -- what 'procaudit estimate' reads ------------------------------------------------------------------------
# Rendered XML (EventRecord.ToXml()) is about twice the binary record on disk: median 1,509 characters for a
# 4688 record of 752 bytes (../shared/reference/events_detections.md, section 2.4).
XML_CHARS_PER_DISK_BYTE = 2.0


def sysmon_logged_in_hour(host: LabHost, hour: datetime) -> float:
    """Sysmon event 1 records written in that hour: one per process start while Sysmon runs."""
    if not host.services.sysmon:
        return 0.0
    since = host.sysmon_log.since
    if since is not None and hour + HOUR <= since:
        return 0.0
    share = 1.0 if since is None or since <= hour else (hour + HOUR - since) / HOUR
    return starts_in_hour(host, hour) * share


def _sysmon_bytes_per_hour(host: LabHost, hour: datetime) -> float:
    log = host.sysmon_log
    if not host.services.sysmon:
        return 0.0
    other = log.other_events_per_day / 24 * log.other_record_size
    return sysmon_logged_in_hour(host, hour) * log.record_size + other


def sysmon_oldest_retained(host: LabHost, now: datetime) -> datetime:
    """The oldest record in the Sysmon channel (overwrite as needed, like the Security log)."""
    return _oldest(lambda hour: _sysmon_bytes_per_hour(host, hour), host.sysmon_log.max_size, now)


def sysmon_hourly_counts(host: LabHost, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """Per hour in [start, end): Sysmon event 1 records still in the channel."""
    oldest = sysmon_oldest_retained(host, end)
    rows = []
    for hour in _hours(start, end):
        lo, hi = max(hour, start, oldest), min(hour + HOUR, end)
        share = max((hi - lo) / HOUR, 0.0)
        rows.append((hour, round(sysmon_logged_in_hour(host, hour) * share)))
    return rows


def process_starts_between(host: LabHost, start: datetime, end: datetime) -> int:
    """Process starts in [start, end), as a live Win32_ProcessStartTrace subscription would count them."""
    total = 0.0
    for hour in _hours(start, end):
        lo, hi = max(hour, start), min(hour + HOUR, end)
        total += starts_in_hour(host, hour) * max((hi - lo) / HOUR, 0.0)
    return round(total)


@dataclass(frozen=True)
class SizeSample:
    """What reading the newest records of the Security log and measuring their rendered XML gives."""

    process_records: int
    process_xml_chars: int
    with_command_line: int
    other_records: int
    other_xml_chars: int


def size_sample(host: LabHost, now: datetime, count: int, process_records: int) -> SizeSample:
    """XML lengths of the newest ``count`` 4688 records (of ``process_records`` in the log) and of other records.

    The newest other records mix 4689 and the rest of the traffic in the proportion of the current hour.
    """
    hour = now.replace(minute=0, second=0, microsecond=0)
    process, cmdline = logged_in_hour(host, 4688, hour)
    terminations, _ = logged_in_hour(host, 4689, hour)
    other = host.security_log.other_events_per_day / 24
    record_xml = host.security_log.record_size * XML_CHARS_PER_DISK_BYTE
    sampled = min(count, process_records)
    with_cmdline = round(sampled * cmdline / process) if process else 0
    other_xml = (terminations * record_xml + other * OTHER_RECORD_SIZE * XML_CHARS_PER_DISK_BYTE) / (
        terminations + other
    )
    return SizeSample(
        process_records=sampled,
        process_xml_chars=round(sampled * record_xml),
        with_command_line=with_cmdline,
        other_records=count,
        other_xml_chars=round(count * other_xml),
    )
