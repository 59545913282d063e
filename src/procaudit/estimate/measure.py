"""What ``procaudit estimate`` runs on each host, and the raw material it brings back.

Two scripts: ``Measure-ProcessCreationRate`` counts per hour on the host (4688, else Sysmon 1, else 4689)
and measures the Security log; ``Measure-ProcessStartSample`` counts live process starts for a few seconds,
only for hosts whose logs hold no usable history. Neither returns an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from procaudit.errors import CancelledError, ContractError, TransportError
from procaudit.remote import ScriptParams, ScriptResult, ScriptSpec
from procaudit.transport.base import Connector

Source = Literal["Security/4688", "Sysmon/1", "Security/4689", ""]

# The live sample waits on the host: its deadline is the per-script deadline plus the sample, plus this.
SAMPLE_DEADLINE_MARGIN = 15.0
# A 4689 history shorter than this is worth less than a live sample (it cannot show a day's rhythm).
MIN_TERMINATION_HISTORY_HOURS = 24.0


DEFAULT_MAX_RECORDS = 20_000_000
# The counting's time budget is this share of the script deadline: a huge log returns partial counts, not a timeout.
TIME_BUDGET_SHARE = 0.75


class RateParams(ScriptParams):
    window_hours: int = Field(default=168, ge=1, le=8784)
    size_sample_count: int = Field(default=200, ge=1, le=5000)
    max_records: int = Field(default=DEFAULT_MAX_RECORDS, ge=1000, le=1_000_000_000)
    time_budget_seconds: int = Field(default=900, ge=10, le=86400)


class SecurityLogFacts(ScriptResult):
    maximum_size_in_bytes: int
    log_mode: str
    file_size: int | None = None
    record_count: int | None = None
    oldest_record_utc: int | None = None


class SizeSampleFacts(ScriptResult):
    process_records: int = 0
    process_xml_chars: int = 0
    with_command_line: int = 0
    other_records: int = 0
    other_xml_chars: int = 0
    truncated: bool = False
    """The size sample stopped at its time bound: it holds fewer records than asked for."""


class RateResult(ScriptResult):
    now_utc: int
    utc_offset_minutes: int = 0
    product_type: int
    terminal_server_mode: int | None = None
    first_hour: int
    source: Source
    counts: list[int]
    total: int
    first_event_utc: int | None = None
    last_event_utc: int | None = None
    source_log_oldest_utc: int | None = None
    truncated: bool = False
    """Counting stopped at MaxRecords or the time budget: the counts cover ``counted_from_utc`` to now only."""
    truncated_by: Literal["MaxRecords", "TimeBudget"] | None = None
    truncated_in: Source | None = None
    """The source being read when counting stopped. With ``source`` empty, counting stopped before it counted
    anything: the later sources were not tried, so it is no evidence of "no events"."""
    counted_from_utc: int | None = None
    security_log: SecurityLogFacts
    size_sample: SizeSampleFacts


class SampleParams(ScriptParams):
    sample_seconds: int = Field(default=300, ge=1, le=3600)


class SampleResult(ScriptResult):
    count: int = Field(ge=0)
    start_utc: int
    seconds: float = Field(gt=0)
    utc_offset_minutes: int = 0


MEASURE_RATE = ScriptSpec("Measure-ProcessCreationRate", "checks", RateParams, RateResult)
MEASURE_SAMPLE = ScriptSpec("Measure-ProcessStartSample", "checks", SampleParams, SampleResult)


@dataclass(frozen=True)
class Measurement:
    """Everything one host told us: its history counts, and a live sample when one was taken."""

    rate: RateResult
    window_hours: int
    sample: SampleResult | None = None
    sample_error: str | None = None


def stopped_before_counting(rate: RateResult) -> bool:
    """Counting hit a bound before it counted a single record: the host's history is unknown, not empty."""
    return not rate.source and rate.truncated


def stopped_note(rate: RateResult) -> str:
    bound = "record limit" if rate.truncated_by == "MaxRecords" else "time budget"
    where = rate.truncated_in or "the first source"
    return (
        f"counting stopped at its {bound} in {where} before it counted any record: no estimate from history "
        "(the later sources were not tried)"
    )


def history_span(rate: RateResult, window_hours: int) -> tuple[int, int] | None:
    """The interval [start, end) the history counts cover (seconds since the epoch, UTC), or None without one.

    It starts at the latest of: the window's start, the oldest record left in the source's log (retention),
    and - when the first counted event comes far later than the source's rate would put it - that event
    (the source was switched on then).
    """
    if not rate.source or rate.total <= 0:
        return None
    end = rate.now_utc
    start = end - window_hours * 3600
    if rate.source_log_oldest_utc is not None:
        start = max(start, rate.source_log_oldest_utc)
    if rate.truncated and rate.counted_from_utc is not None:
        start = max(start, rate.counted_from_utc)  # the newest records only: the count stopped there
    if rate.first_event_utc is not None and rate.first_event_utc > start:
        expected_gap = (end - start) / rate.total
        if rate.first_event_utc - start > max(3600.0, 10 * expected_gap):
            start = rate.first_event_utc
    return (start, end) if end > start else None


def needs_sample(rate: RateResult, window_hours: int) -> bool:
    """No history, or only a short 4689 history: a live sample is worth its wait."""
    span = history_span(rate, window_hours)
    if span is None:
        return True
    hours = (span[1] - span[0]) / 3600
    return rate.source == "Security/4689" and hours < MIN_TERMINATION_HISTORY_HOURS


def check_rate(rate: RateResult, window_hours: int) -> None:
    """The counts must be the shape the script promises; anything else is a contract error for this host."""
    if not rate.source:
        if rate.total or any(rate.counts):
            raise ContractError("Measure-ProcessCreationRate counted events but named no source")
        return
    expected = rate.now_utc // 3600 - rate.first_hour + 1
    if len(rate.counts) != expected or abs(expected - (window_hours + 1)) > 1:
        raise ContractError(
            f"Measure-ProcessCreationRate returned {len(rate.counts)} hourly counts for a {window_hours} h window"
        )
    if any(c < 0 for c in rate.counts) or sum(rate.counts) != rate.total:
        raise ContractError("Measure-ProcessCreationRate returned counts that do not add up to its total")


def measure_host(
    connector: Connector,
    window_hours: int,
    sample_seconds: int,
    size_sample: int,
    *,
    max_records: int = DEFAULT_MAX_RECORDS,
) -> Measurement:
    """Run the measurement on one host: history first, then a live sample only when the history is not enough.

    A live sample that fails - on the host, or in transit (a timeout, a dropped connection) - leaves the host
    with its history, when it has one: the estimate says so and its confidence is low."""
    budget = max(10, min(86400, int(connector.target.options.script_timeout * TIME_BUDGET_SHARE)))
    params = RateParams(
        window_hours=window_hours, size_sample_count=size_sample, max_records=max_records, time_budget_seconds=budget
    )
    rate = connector.run(MEASURE_RATE, params)
    check_rate(rate, window_hours)
    if sample_seconds <= 0 or not needs_sample(rate, window_hours):
        return Measurement(rate, window_hours)
    timeout = connector.target.options.script_timeout + sample_seconds + SAMPLE_DEADLINE_MARGIN
    try:
        sample = connector.run(MEASURE_SAMPLE, SampleParams(sample_seconds=sample_seconds), timeout=timeout)
    except TransportError as exc:
        if isinstance(exc, CancelledError) or history_span(rate, window_hours) is None:
            raise
        return Measurement(rate, window_hours, sample_error=f"{exc.kind}: {exc}")
    return Measurement(rate, window_hours, sample=sample)
