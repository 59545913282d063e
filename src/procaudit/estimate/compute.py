"""Turn one host's measurement into the figures an administrator plans with. Pure functions, no I/O.

Method, in order of truth:

1. ``4688``: the Security log holds 4688 already; count them (what will be forwarded, exactly).
2. ``sysmon1``: Sysmon event 1, one per process start that passes the Sysmon configuration.
3. ``4689``: process termination events covering at least a day (exits match starts over days).
4. ``sample``: a live Win32_ProcessStartTrace count over ``--sample`` seconds.
5. ``4689`` with less than a day of history, when the sample could not be taken.

The issue ranks the live sample above 4689; this ranks a day or more of 4689 above it, because a day of
exits shows the daily rhythm while a minute of starts shows one minute (see rhythm.py).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from procaudit.estimate.measure import Measurement, RateResult, history_span, stopped_before_counting, stopped_note
from procaudit.estimate.rhythm import HOUR_SECONDS, RHYTHMS, Role, expected_days, role_of

Method = Literal["4688", "sysmon1", "4689", "sample"]
Confidence = Literal["high", "medium", "low"]

_METHOD_OF_SOURCE: dict[str, Method] = {"Security/4688": "4688", "Sysmon/1": "sysmon1", "Security/4689": "4689"}
CHUNK = 64 * 1024  # the Security log grows in 64 KiB chunks; a maximum size must be a multiple of it
POLICY_MAX_SIZE = 4_194_240 * 1024  # "Specify the maximum log file size (KB)": the top of the range many ADMX state
# Command-line inclusion grows a 4688 record: medians 752 B with and 456 B without (events_detections.md 2.4).
COMMAND_LINE_BYTES = 752 - 456
WEEK_HOURS = 168.0
ZERO_COUNT_BOUND = 3
DAY_HOURS = 24.0


class EstimateSettings(BaseModel):
    """The knobs of one estimate run (recorded in the report)."""

    window_hours: int = 168
    # A minute on a quiet server sees a handful of starts (error up to ~40% in the lab); five minutes stay within
    # ~15%. The sample runs only on hosts with no 4688, Sysmon or 4689 history, all in parallel.
    sample_seconds: int = 300
    retention_days: float = 14.0
    forward_factor: float = 3.5
    """Bytes forwarded per byte on disk: ~3.5 for SIEM JSON with the rendered message (2.8 KB vs 0.8 KB)."""
    record_bytes: int = 800
    """Bytes per 4688 record on disk where it cannot be measured (measured median 0.73-0.87 KB)."""
    size_sample: int = 200
    max_records: int = 20_000_000
    """Counting on a host stops after this many records (newest first); the report says when it did."""


class SecurityLogState(BaseModel):
    max_size: int
    mode: str
    file_size: int | None = None
    record_count: int | None = None
    oldest_record: datetime | None = None
    bytes_per_day_now: float | None = None
    """How fast the log fills today: bytes it holds over the age of its oldest record."""


class HostFigures(BaseModel):
    """A host's estimate (everything but identity and status)."""

    role: Role
    method: Method
    confidence: Confidence
    observed_events: int
    """Events counted (history) or process starts seen (sample)."""
    coverage_seconds: int
    """Seconds the count covers: the window, cut by retention or by when the source started; the sample length."""
    rhythm_factor: float
    """Events/day over the plain mean of the covered interval (1.0 for whole weeks; see rhythm.py)."""
    events_per_day: float
    mean_hour_events: float
    peak_hour_events: float
    peak_hour: datetime | None
    """Start (UTC) of the busiest full hour counted; None when the peak comes from the rhythm."""
    events_per_sec_mean: float
    events_per_sec_peak: float
    record_bytes: float
    record_bytes_measured: bool
    already_audited: bool
    process_bytes_per_day: int
    """4688 bytes per day in the Security log once command lines are in."""
    added_bytes_per_day: int
    """What turning it on adds to the Security log (0 where 4688 with command lines is logged already)."""
    forwarded_bytes_per_day: int
    projected_bytes_per_day: int | None
    days_kept: float | None
    """Days the current maximum size holds at the projected rate."""
    max_size_needed: int | None
    """Maximum size for the retention target, in whole 64 KiB chunks."""
    max_size_change: int | None
    """The new maximum size to request, when the current one is smaller than needed; else None."""
    log: SecurityLogState
    notes: list[str]


class NoMethod(Exception):
    """No usable history and no live sample: the volume cannot be told."""


def _dt(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def _log_state(rate: RateResult) -> SecurityLogState:
    log = rate.security_log
    per_day = None
    if log.file_size and log.oldest_record_utc is not None:
        age = rate.now_utc - log.oldest_record_utc
        if age >= HOUR_SECONDS:
            per_day = log.file_size / age * 86400
    return SecurityLogState(
        max_size=log.maximum_size_in_bytes,
        mode=log.log_mode,
        file_size=log.file_size,
        record_count=log.record_count,
        oldest_record=_dt(log.oldest_record_utc),
        bytes_per_day_now=per_day,
    )


def _process_records_in_log(rate: RateResult, span: tuple[int, int]) -> float:
    """How many 4688 records the whole Security log holds: the count itself when it reached the log's oldest
    record, else the counted rate over the log's age (capped by the log's record count)."""
    start, end = span
    oldest = rate.security_log.oldest_record_utc
    records = float(rate.security_log.record_count or 0)
    if oldest is None or start <= oldest + HOUR_SECONDS:
        return min(float(rate.total), records)
    return min(rate.total * (end - oldest) / (end - start), records)


def _record_bytes(rate: RateResult, span: tuple[int, int] | None, settings: EstimateSettings) -> float | None:
    """Bytes per 4688 record on disk, measured where 4688 exists (see the script's help); None otherwise.

    Disk bytes per XML character = FileSize / (n4688 * mean 4688 XML + n_other * mean other XML); the 4688
    record costs its mean XML length times that.
    """
    size, log = rate.size_sample, rate.security_log
    if (
        rate.source != "Security/4688"
        or span is None
        or size.process_records <= 0
        or size.other_records <= 0
        or not log.file_size
        or not log.record_count
    ):
        return None
    process_xml = size.process_xml_chars / size.process_records
    other_xml = size.other_xml_chars / size.other_records
    process = _process_records_in_log(rate, span)
    xml_total = process * process_xml + max(log.record_count - process, 0.0) * other_xml
    if xml_total <= 0:
        return None
    measured = log.file_size / xml_total * process_xml
    return measured if 150 <= measured <= 64 * 1024 else None


def _confidence(method: Method, hours: float) -> Confidence:
    if method == "sample" or hours < DAY_HOURS:
        return "low"
    if method == "4688" and hours >= WEEK_HOURS - 1:
        return "high"
    return "medium"


def _history_figures(m: Measurement, role: Role) -> tuple[Method, int, float, float, float, datetime | None, bool]:
    """(method, observed, coverage hours, events/day, peak hour events, peak hour, peak from rhythm)."""
    rate = m.rate
    span = history_span(rate, m.window_hours)
    if span is None:
        raise NoMethod
    start, end = span
    days = expected_days(role, start, end, rate.utc_offset_minutes)
    if days <= 0:
        raise NoMethod
    per_day = rate.total / days
    hours = (end - start) / HOUR_SECONDS
    full = [
        (count, (rate.first_hour + i) * HOUR_SECONDS)
        for i, count in enumerate(rate.counts)
        if (rate.first_hour + i) * HOUR_SECONDS >= start and (rate.first_hour + i + 1) * HOUR_SECONDS <= end
    ]
    peak, peak_at = max(full, key=lambda row: (row[0], -row[1])) if full else (0, None)
    rhythm_peak = per_day * RHYTHMS[role].peak_weight()
    from_rhythm = hours < WEEK_HOURS - 1 and rhythm_peak > peak
    if from_rhythm:
        return _METHOD_OF_SOURCE[rate.source], rate.total, hours, per_day, rhythm_peak, None, True
    return _METHOD_OF_SOURCE[rate.source], rate.total, hours, per_day, float(peak), _dt(peak_at), False


def figures(m: Measurement, settings: EstimateSettings) -> HostFigures:
    """The estimate for one host. Raises ``NoMethod`` when nothing could be measured."""
    rate = m.rate
    notes: list[str] = []
    role = role_of(rate.product_type, rate.terminal_server_mode)
    use_sample = m.sample is not None and (history_span(rate, m.window_hours) is None or rate.source == "Security/4689")
    if use_sample:
        assert m.sample is not None
        sample = m.sample
        end = sample.start_utc + max(1, round(sample.seconds))
        days = expected_days(role, sample.start_utc, end, sample.utc_offset_minutes)
        if days <= 0:
            raise NoMethod
        method: Method = "sample"
        observed = sample.count
        hours = sample.seconds / HOUR_SECONDS
        # No start seen says "fewer than about 3" (the 95% upper bound of a Poisson count of zero): plan for that.
        per_day = max(observed, ZERO_COUNT_BOUND if observed == 0 else 0) / days
        peak, peak_at, from_rhythm = per_day * RHYTHMS[role].peak_weight(), None, True
        notes.append(
            f"live sample: {observed} process starts in {sample.seconds:.0f} s, scaled to a day by the {role} rhythm"
        )
        if stopped_before_counting(rate):
            notes.append(stopped_note(rate))
        if observed == 0:
            notes.append(f"no start seen: figures use the 95% upper bound ({ZERO_COUNT_BOUND} starts); sample longer")
        elif observed < 30:
            notes.append(
                f"{observed} start{'s' if observed > 1 else ''}: about +/-{100 / math.sqrt(observed):.0f}% "
                "from chance alone; sample longer"
            )
    else:
        method, observed, hours, per_day, peak, peak_at, from_rhythm = _history_figures(m, role)
        if m.sample_error:
            notes.append(
                f"live sample failed ({m.sample_error}); estimated from {hours:.0f} h of {rate.source} history "
                "instead, with low confidence"
            )
        if rate.truncated:
            bound = "record limit" if rate.truncated_by == "MaxRecords" else "time budget"
            notes.append(
                f"counting stopped at its {bound} after {rate.total:,} records: the figures cover the newest "
                f"{hours:.0f} h of the window only"
            )
        if hours < WEEK_HOURS - 1:
            factor = _ratio(per_day, observed, hours)
            notes.append(f"history covers {hours:.0f} h, not a week: scaled by the {role} rhythm (x{factor:.2f})")
    if method == "sysmon1":
        notes.append("Sysmon configurations often exclude noisy images: a lower bound")
    if method == "4689":
        notes.append("process terminations stand in for starts (equal over days)")
    if from_rhythm:
        notes.append(f"peak hour from the {role} rhythm")

    measured_bytes = _record_bytes(rate, history_span(rate, m.window_hours), settings)
    measured = measured_bytes is not None
    record_bytes = measured_bytes if measured_bytes is not None else float(settings.record_bytes)
    if rate.source == "Security/4688" and not measured:
        notes.append(f"record size could not be measured; assumed {settings.record_bytes} B")
    if rate.size_sample.truncated:
        notes.append("the record size sample stopped at its time bound: measured from fewer records")
    already = rate.source == "Security/4688"
    uplift = 0.0
    size = rate.size_sample
    if already and size.process_records > 0 and size.with_command_line * 2 < size.process_records:
        uplift = COMMAND_LINE_BYTES
        notes.append(
            f"the newest 4688 records carry no command line: including it adds about {COMMAND_LINE_BYTES} B per record"
        )
    final_bytes = record_bytes + uplift
    process_bytes = per_day * final_bytes
    added = per_day * uplift if already else process_bytes
    log = _log_state(rate)
    projected = None
    if log.bytes_per_day_now is not None:
        if already:
            # Today's fill rate holds the 4688 of the retained hours at their own (unscaled) rate: replace that
            # part with the week's rate, so a log that covers a busy morning does not look like every day.
            existing = observed / hours * 24 * record_bytes if hours > 0 else 0.0
            projected = max(log.bytes_per_day_now - existing, 0.0) + process_bytes
        else:
            projected = log.bytes_per_day_now + added
    days_kept = log.max_size / projected if projected else None
    needed = math.ceil(projected * settings.retention_days / CHUNK) * CHUNK if projected else None
    change = needed if needed is not None and needed > log.max_size else None
    if needed is not None and needed > POLICY_MAX_SIZE:
        notes.append(
            f"{settings.retention_days:g} days need more than 4 GiB: the Group Policy setting for the Security log "
            "size tops out at 4,194,240 KB in many templates; keep fewer days on the host and rely on forwarding"
        )
    if log.mode != "Circular":
        when_full = "archives itself" if log.mode == "AutoBackup" else "stops logging"
        notes.append(f"Security log mode {log.mode}: when full it {when_full}")
    return HostFigures(
        role=role,
        method=method,
        confidence="low" if m.sample_error else _confidence(method, hours),
        observed_events=observed,
        coverage_seconds=round(hours * HOUR_SECONDS),
        rhythm_factor=round(_ratio(per_day, observed, hours), 4),
        events_per_day=round(per_day, 1),
        mean_hour_events=round(per_day / 24, 2),
        peak_hour_events=round(peak, 1),
        peak_hour=peak_at,
        events_per_sec_mean=round(per_day / 86400, 4),
        events_per_sec_peak=round(peak / HOUR_SECONDS, 4),
        record_bytes=round(final_bytes, 1),
        record_bytes_measured=measured,
        already_audited=already,
        process_bytes_per_day=round(process_bytes),
        added_bytes_per_day=round(added),
        forwarded_bytes_per_day=round(process_bytes * settings.forward_factor),
        projected_bytes_per_day=round(projected) if projected is not None else None,
        days_kept=round(days_kept, 2) if days_kept is not None else None,
        max_size_needed=needed,
        max_size_change=change,
        log=log,
        notes=notes,
    )


def _ratio(per_day: float, observed: int, hours: float) -> float:
    """Events/day over the plain mean of the observed interval."""
    plain = observed / hours * 24 if hours > 0 else 0.0
    return per_day / plain if plain > 0 else 1.0
