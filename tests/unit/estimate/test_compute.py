"""The estimate's arithmetic on hand-made measurements: coverage, scaling, sizes, confidence, edge cases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procaudit.errors import ContractError
from procaudit.estimate.compute import CHUNK, EstimateSettings, NoMethod, figures
from procaudit.estimate.measure import Measurement, RateResult, SampleResult, check_rate, history_span, needs_sample
from procaudit.estimate.rhythm import RHYTHMS, expected_days, role_of

WEEK = 168
# A Wednesday 10:30 UTC, on an hour boundary plus 30 minutes.
NOW = int(datetime(2025, 3, 12, 10, 30, tzinfo=UTC).timestamp())


def rate(
    counts: list[int] | None = None,
    *,
    source: str = "Security/4688",
    window: int = WEEK,
    product_type: int = 3,
    oldest: int | None = None,
    first_event: int | None = None,
    size: dict[str, int] | None = None,
    log: dict[str, Any] | None = None,
) -> RateResult:
    first_hour = NOW // 3600 - window
    if counts is None:
        counts = [100] * (window + 1)
    total = sum(counts)
    if first_event is None and total:
        index = next(i for i, c in enumerate(counts) if c)
        first_event = max((first_hour + index) * 3600, NOW - window * 3600) + 60
    return RateResult.model_validate(
        {
            "NowUtc": NOW,
            "UtcOffsetMinutes": 0,
            "ProductType": product_type,
            "TerminalServerMode": 0,
            "FirstHour": first_hour,
            "Source": source,
            "Counts": counts if source else [],
            "Total": total if source else 0,
            "FirstEventUtc": first_event if source else None,
            "LastEventUtc": NOW - 30 if source else None,
            "SourceLogOldestUtc": oldest if oldest is not None else NOW - 40 * 86400,
            "SecurityLog": {
                "MaximumSizeInBytes": 20 * 1024 * 1024,
                "LogMode": "Circular",
                "FileSize": 20 * 1024 * 1024,
                "RecordCount": 30000,
                "OldestRecordUtc": oldest if oldest is not None else NOW - 40 * 86400,
                **(log or {}),
            },
            "SizeSample": size or {},
        }
    )


def test_a_flat_full_week_is_its_mean_and_high_confidence() -> None:
    result = figures(Measurement(rate(), WEEK), EstimateSettings())
    assert result.method == "4688" and result.confidence == "high"
    # 169 buckets of 100, the window starts 30 minutes into the first: the coverage is exactly 168 h
    assert result.observed_events == 16900
    assert result.coverage_seconds == WEEK * 3600
    assert result.events_per_day == pytest.approx(16900 / 7, abs=0.05)
    assert result.rhythm_factor == pytest.approx(1.0)
    assert result.peak_hour_events == 100 and result.peak_hour is not None


def test_retention_cuts_the_coverage_and_the_rhythm_scales_it() -> None:
    # A workstation whose log keeps only the last 3 hours (Wednesday 07:30-10:30), counts following its rhythm:
    # mostly office hours, so the plain mean of those hours is far above the day's.
    counts = [0] * (WEEK + 1)
    rhythm = RHYTHMS["workstation"]
    for i in range(WEEK - 3, WEEK + 1):
        hour = datetime.fromtimestamp((NOW // 3600 - WEEK + i) * 3600, UTC)
        counts[i] = round(3000 * rhythm.weight(hour) * (0.5 if i in (WEEK - 3, WEEK) else 1))
    measured = rate(counts, oldest=NOW - 3 * 3600, product_type=1)
    assert history_span(measured, WEEK) == (NOW - 3 * 3600, NOW)
    result = figures(Measurement(measured, WEEK), EstimateSettings())
    assert result.role == "workstation"
    assert result.coverage_seconds == 3 * 3600 and result.confidence == "low"
    assert result.events_per_day == pytest.approx(3000, rel=0.05)
    assert result.rhythm_factor < 0.6
    assert any("not a week" in n for n in result.notes)


def test_a_source_switched_on_mid_window_starts_the_coverage_there() -> None:
    counts = [0] * 100 + [50] * (WEEK + 1 - 100)
    start = (NOW // 3600 - WEEK + 100) * 3600
    measured = rate(counts, first_event=start + 5)
    assert history_span(measured, WEEK) == (start + 5, NOW)
    quiet = rate([1 if i % 20 == 0 else 0 for i in range(WEEK + 1)])
    # a quiet source whose first event comes within its usual gap covers the whole window
    assert history_span(quiet, WEEK) == (NOW - WEEK * 3600, NOW)


def test_sysmon_and_4689_are_medium_at_best() -> None:
    assert figures(Measurement(rate(source="Sysmon/1"), WEEK), EstimateSettings()).confidence == "medium"
    result = figures(Measurement(rate(source="Security/4689"), WEEK), EstimateSettings())
    assert result.method == "4689" and result.confidence == "medium" and not result.already_audited


def test_short_4689_history_asks_for_a_sample_and_the_sample_wins() -> None:
    counts = [0] * (WEEK - 5) + [40] * 6
    short = rate(counts, source="Security/4689", oldest=NOW - 5 * 3600)
    assert needs_sample(short, WEEK)
    assert not needs_sample(rate(), WEEK)
    assert needs_sample(rate(source=""), WEEK)
    sample = SampleResult(count=40, start_utc=NOW, seconds=60.0)
    result = figures(Measurement(short, WEEK, sample=sample), EstimateSettings())
    assert result.method == "sample" and result.confidence == "low"
    without = figures(Measurement(short, WEEK, sample_error="Access denied"), EstimateSettings())
    assert without.method == "4689" and without.confidence == "low"
    assert any("Access denied" in n for n in without.notes)


def test_a_sample_is_scaled_by_the_hour_of_the_week() -> None:
    none = rate(source="")
    weekday = SampleResult(count=120, start_utc=NOW, seconds=600.0)  # Wednesday 10:30: a busy hour
    saturday = SampleResult(count=120, start_utc=NOW + 3 * 86400 - 7 * 3600, seconds=600.0)  # Saturday 03:30
    busy = figures(Measurement(none, WEEK, sample=weekday), EstimateSettings())
    quiet = figures(Measurement(none, WEEK, sample=saturday), EstimateSettings())
    # the same count at night on a weekend means a busier host than in office hours
    assert quiet.events_per_day > 2 * busy.events_per_day
    assert busy.events_per_day == pytest.approx(
        120 * 6 * 24 / (24 * RHYTHMS["member"].weight(datetime.fromtimestamp(NOW, UTC))), rel=0.01
    )


def test_a_sample_that_saw_nothing_plans_for_the_upper_bound() -> None:
    result = figures(
        Measurement(rate(source=""), WEEK, sample=SampleResult(count=0, start_utc=NOW, seconds=60.0)),
        EstimateSettings(),
    )
    assert result.observed_events == 0 and result.events_per_day > 0
    assert any("upper bound" in n for n in result.notes)


def test_no_history_and_no_sample_is_no_method() -> None:
    with pytest.raises(NoMethod):
        figures(Measurement(rate(source=""), WEEK), EstimateSettings())


def test_record_size_from_file_size_and_xml_lengths() -> None:
    # Whole log: 30,000 records, 10,000 of them 4688 (all counted: the count reaches the log's oldest record).
    # XML: 4688 1,600 chars, others 1,200; the file holds 20 MiB -> bytes per XML char = 20 MiB / 40.0e6.
    counts = [0] * (WEEK - 20) + [500] * 20 + [0]
    measured = rate(
        counts,
        oldest=NOW - 21 * 3600,
        size={
            "ProcessRecords": 200,
            "ProcessXmlChars": 320000,
            "WithCommandLine": 200,
            "OtherRecords": 200,
            "OtherXmlChars": 240000,
        },
    )
    result = figures(Measurement(measured, WEEK), EstimateSettings())
    assert result.record_bytes_measured
    assert result.record_bytes == pytest.approx(20 * 1024 * 1024 / 40.0e6 * 1600, rel=1e-3)


def test_record_size_is_assumed_without_4688() -> None:
    result = figures(Measurement(rate(source="Sysmon/1"), WEEK), EstimateSettings(record_bytes=1234))
    assert not result.record_bytes_measured and result.record_bytes == 1234
    assert result.process_bytes_per_day == pytest.approx(result.events_per_day * 1234, rel=1e-4)


def test_missing_command_lines_add_their_bytes() -> None:
    size = {"ProcessRecords": 200, "ProcessXmlChars": 240000, "WithCommandLine": 0, "OtherRecords": 200,
            "OtherXmlChars": 240000}  # fmt: skip
    result = figures(Measurement(rate(size=size), WEEK), EstimateSettings())
    assert result.already_audited
    assert result.added_bytes_per_day == pytest.approx(result.events_per_day * 296, rel=1e-4)
    with_lines = dict(size, WithCommandLine=200)
    assert figures(Measurement(rate(size=with_lines), WEEK), EstimateSettings()).added_bytes_per_day == 0


def test_log_sizing_rounds_to_whole_chunks_and_only_grows() -> None:
    # Today's log fills 20 MiB in 40 days; turning 4688 on (Sysmon-measured 1,000/day x 800 B) adds 800,000 B/day.
    result = figures(Measurement(rate([10] * (WEEK + 1), source="Sysmon/1"), WEEK), EstimateSettings(retention_days=30))
    now_rate = 20 * 1024 * 1024 / 40
    assert result.projected_bytes_per_day == pytest.approx(now_rate + result.events_per_day * 800, rel=1e-4)
    assert result.days_kept == pytest.approx(20 * 1024 * 1024 / result.projected_bytes_per_day, rel=1e-3)
    assert result.max_size_needed is not None and result.max_size_needed % CHUNK == 0
    assert 0 <= result.max_size_needed - result.projected_bytes_per_day * 30 < CHUNK
    assert result.max_size_change == result.max_size_needed  # 20 MiB is less than 30 days need
    roomy = figures(
        Measurement(rate([10] * (WEEK + 1), source="Sysmon/1", log={"MaximumSizeInBytes": 2**33}), WEEK),
        EstimateSettings(retention_days=30),
    )
    assert roomy.max_size_change is None


def test_a_log_that_stops_when_full_says_so() -> None:
    result = figures(Measurement(rate(log={"LogMode": "Retain"}), WEEK), EstimateSettings())
    assert any("stops logging" in n for n in result.notes)


@pytest.mark.parametrize(
    ("product_type", "terminal", "role"),
    [(1, 0, "workstation"), (2, 0, "dc"), (3, 1, "rds"), (3, 0, "member"), (3, None, "member")],
)
def test_role_from_the_host(product_type: int, terminal: int | None, role: str) -> None:
    assert role_of(product_type, terminal) == role


@given(
    role=st.sampled_from(sorted(RHYTHMS)),
    start=st.integers(min_value=1_500_000_000, max_value=1_900_000_000),
    offset=st.integers(min_value=-720, max_value=840),
    weeks=st.integers(min_value=1, max_value=3),
)
def test_whole_weeks_hold_exactly_their_days(role: str, start: int, offset: int, weeks: int) -> None:
    assert expected_days(role, start, start + weeks * 7 * 86400, offset) == pytest.approx(7 * weeks)  # type: ignore[arg-type]


@given(
    role=st.sampled_from(sorted(RHYTHMS)),
    start=st.integers(min_value=1_500_000_000, max_value=1_900_000_000),
    cut=st.integers(min_value=1, max_value=7 * 86400 - 1),
)
def test_expected_days_add_up_over_any_split(role: str, start: int, cut: int) -> None:
    whole = expected_days(role, start, start + 7 * 86400, 0)  # type: ignore[arg-type]
    parts = expected_days(role, start, start + cut, 0) + expected_days(role, start + cut, start + 7 * 86400, 0)  # type: ignore[arg-type]
    assert parts == pytest.approx(whole)


def test_counts_that_break_the_contract_are_contract_errors() -> None:
    good = rate()
    check_rate(good, WEEK)
    with pytest.raises(ContractError, match="hourly counts"):
        check_rate(good.model_copy(update={"counts": good.counts[:-1], "total": sum(good.counts[:-1])}), WEEK)
    with pytest.raises(ContractError, match="add up"):
        check_rate(good.model_copy(update={"total": good.total + 1}), WEEK)
    with pytest.raises(ContractError, match="no source"):
        check_rate(good.model_copy(update={"source": ""}), WEEK)


def test_sizes_beyond_what_group_policy_sets_are_called_out() -> None:
    busy = rate([20000] * (WEEK + 1), source="Sysmon/1")  # 480,000 a day x 800 B = 384 MB/day
    result = figures(Measurement(busy, WEEK), EstimateSettings(retention_days=14))
    assert result.max_size_needed is not None and result.max_size_needed > 4_194_240 * 1024
    assert any("4,194,240 KB" in n for n in result.notes)
    modest = figures(Measurement(rate(source="Sysmon/1"), WEEK), EstimateSettings())
    assert not any("4,194,240 KB" in n for n in modest.notes)
