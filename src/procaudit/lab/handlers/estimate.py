"""Lab implementations of checks/Measure-ProcessCreationRate.ps1 and checks/Measure-ProcessStartSample.ps1.

Both compute from the host's activity model (procaudit.lab.eventlog) what the scripts count on Windows,
without materialising a single event: a host with a billion 4688 records answers as fast as one with ten.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from procaudit.lab import eventlog
from procaudit.lab.handlers.common import BindingError, optional_int
from procaudit.lab.model import LabHost
from procaudit.lab.scripts import HandlerContext, handles, ps_json
from procaudit.lab.wsman import ScriptOutcome, ScriptRun

SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"
# The lab does not wait a whole live sample: it sleeps at most this long, then answers for the full sample.
SAMPLE_SLEEP_CAP = 2.0
_LOG_MODES = {"overwrite": "Circular", "archive": "AutoBackup", "retain": "Retain"}


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp() // 1)


def _counts(host: LabHost, source: str, start: datetime, now: datetime) -> list[tuple[datetime, int]]:
    if source == "Sysmon/1":
        return eventlog.sysmon_hourly_counts(host, start, now)
    event_id = 4688 if source == "Security/4688" else 4689
    return [(hour, events) for hour, events, _ in eventlog.hourly_counts(host, event_id, start, now)]


def _first_event(rows: list[tuple[datetime, int]], start: datetime, oldest: datetime) -> datetime | None:
    """The first counted record: spread evenly over the retained part of its hour."""
    for hour, count in rows:
        if count:
            lo = max(hour, start, oldest)
            hi = hour + eventlog.HOUR
            return lo + (hi - lo) / (count + 1)
    return None


def _last_event(rows: list[tuple[datetime, int]], now: datetime) -> datetime | None:
    for hour, count in reversed(rows):
        if count:
            hi = min(hour + eventlog.HOUR, now)
            return hi - (hi - hour) / (count + 1)
    return None


@handles("Measure-ProcessCreationRate")
def _measure_rate(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    host, now = ctx.host, ctx.world.clock()
    try:
        window = optional_int(run, "WindowHours", 168, 1, 8784)
        sample_count = optional_int(run, "SizeSampleCount", 200, 1, 5000)
        max_records = optional_int(run, "MaxRecords", 20000000, 1000, 1000000000)
        budget = optional_int(run, "TimeBudgetSeconds", 900, 10, 86400)
    except BindingError as exc:
        return ScriptOutcome(failure=str(exc))
    start = now - timedelta(hours=window)
    first_hour = _seconds(start) // 3600
    buckets = _seconds(now) // 3600 - first_hour + 1

    stats = eventlog.log_stats(host, now)
    # The script's reader scans every Security record of the window, matching or not, at the host's read rate;
    # the time budget stops it with the newest records counted. (The Sysmon log's scan is not modelled: free.)
    rate = host.security_log.read_records_per_second
    span = (now - max(start, stats.oldest)).total_seconds()
    retained = (now - stats.oldest).total_seconds()
    scan = stats.record_count * (span / retained) if retained > 0 and span > 0 else 0.0
    left = float(budget)
    source, rows, stopped_in, budget_share = "", [], None, 1.0
    for candidate in ("Security/4688", "Sysmon/1", "Security/4689"):
        if candidate == "Sysmon/1" and not host.services.sysmon:
            continue
        candidate_rows = _counts(host, candidate, start, now)
        needed = scan / rate if rate and candidate != "Sysmon/1" else 0.0
        if needed > left:
            budget_share, stopped_in = left / needed, candidate
        else:
            left -= needed
        found = sum(count for _, count in candidate_rows)
        if found and int(found * budget_share) > 0:
            source, rows = candidate, candidate_rows
            break
        if stopped_in is not None:
            break  # stopped before counting anything: the later sources are not tried
    oldest = eventlog.sysmon_oldest_retained(host, now) if source == "Sysmon/1" else stats.oldest
    counts = [0] * buckets
    for hour, count in rows:
        index = _seconds(hour) // 3600 - first_hour
        if 0 <= index < buckets:
            counts[index] += count
    total = sum(counts)
    first = _first_event(rows, start, oldest) if source else None
    last = _last_event(rows, now) if source else None
    truncated_by = None
    if total >= max_records:  # the script stops at its MaxRecords-th read, not knowing whether more follow
        truncated_by, limit = "MaxRecords", max_records
    if stopped_in is not None and source and int(total * budget_share) < min(total, max_records):
        truncated_by, limit = "TimeBudget", int(total * budget_share)
    truncated = truncated_by is not None
    if truncated:
        # The script reads newest first and stops at MaxRecords: older hours are not counted, and in the hour
        # where it stopped only the newest records are (spread evenly over the hour, as the lab lays them).
        kept, remaining = [0] * buckets, limit
        for index in range(buckets - 1, -1, -1):
            take = min(counts[index], remaining)
            kept[index], remaining = take, remaining - take
            if remaining == 0:
                hour_start = (first_hour + index) * 3600
                share = take / counts[index] if counts[index] else 1.0
                first = datetime.fromtimestamp(hour_start + 3600 * (1 - share), UTC)
                break
        counts, total = kept, limit
    process_total = total if source == "Security/4688" else 0
    size = eventlog.size_sample(host, now, sample_count, process_total)
    log = host.security_log
    document = {
        "NowUtc": _seconds(now),
        "UtcOffsetMinutes": 0,  # the lab keeps its hosts' clocks on UTC
        "ProductType": host.os.product_type,
        "TerminalServerMode": 1 if host.role == "rds" else 0,
        "FirstHour": first_hour,
        "Source": source,
        "Counts": counts if source else [],
        "Total": total if source else 0,
        "FirstEventUtc": _seconds(first) if first else None,
        "LastEventUtc": _seconds(last) if last else None,
        "SourceLogOldestUtc": _seconds(oldest),
        "Truncated": truncated or stopped_in is not None,
        "TruncatedBy": truncated_by if truncated else "TimeBudget" if stopped_in is not None else None,
        "TruncatedIn": (source if truncated else stopped_in) if truncated or stopped_in is not None else None,
        "CountedFromUtc": _seconds(first) if truncated and first else None,
        "SecurityLog": {
            "MaximumSizeInBytes": log.max_size,
            "LogMode": _LOG_MODES[log.retention],
            "FileSize": stats.file_size,
            "RecordCount": stats.record_count,
            "OldestRecordUtc": _seconds(stats.oldest),
        },
        "SizeSample": {
            "ProcessRecords": size.process_records,
            "ProcessXmlChars": size.process_xml_chars,
            "WithCommandLine": size.with_command_line,
            "OtherRecords": size.other_records,
            "OtherXmlChars": size.other_xml_chars,
            "Truncated": False,  # the lab's size sample costs no time
        },
    }
    return ScriptOutcome(output=[ps_json(document)])


@handles("Measure-ProcessStartSample")
def _measure_sample(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    try:
        seconds = optional_int(run, "SampleSeconds", 60, 1, 3600)
    except BindingError as exc:
        return ScriptOutcome(failure=str(exc))
    start = ctx.world.clock()
    # Start-Sleep on the host: stopped (and the subscription removed) when the client stops the pipeline.
    if run.cancelled.wait(min(float(seconds), SAMPLE_SLEEP_CAP)):
        return ScriptOutcome(failure="The pipeline has been stopped.")
    count = eventlog.process_starts_between(ctx.host, start, start + timedelta(seconds=seconds))
    document = {
        "Count": count,
        "StartUtc": _seconds(start.astimezone(UTC)),
        "Seconds": float(seconds),
        "UtcOffsetMinutes": 0,
    }
    return ScriptOutcome(output=[ps_json(document)])
