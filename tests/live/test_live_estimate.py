"""What the lab models about 'estimate', checked on a real host (opt-in: PROCAUDIT_LIVE_HOST)."""

from __future__ import annotations

import time

import pytest

from procaudit.estimate.compute import EstimateSettings, figures
from procaudit.estimate.measure import (
    MEASURE_RATE,
    MEASURE_SAMPLE,
    Measurement,
    RateParams,
    SampleParams,
    check_rate,
    history_span,
)
from procaudit.transport.psrp import PsrpConnector

pytestmark = pytest.mark.live


def test_hourly_counts_are_consistent_and_the_log_is_described(live: PsrpConnector) -> None:
    window = 24
    rate = live.run(MEASURE_RATE, RateParams(window_hours=window, size_sample_count=50), timeout=600)
    check_rate(rate, window)  # counts shaped as promised and adding up to the total
    assert abs(rate.now_utc - time.time()) < 600, "NowUtc is the host's UTC clock in seconds"
    assert rate.source in ("Security/4688", "Sysmon/1", "Security/4689", "")
    assert rate.product_type in (1, 2, 3) and -720 <= rate.utc_offset_minutes <= 840
    log = rate.security_log
    assert log.maximum_size_in_bytes >= 1024 * 1024 and log.log_mode in ("Circular", "AutoBackup", "Retain")
    assert log.file_size and log.record_count and log.oldest_record_utc is not None
    assert log.oldest_record_utc <= rate.now_utc
    if rate.source:
        assert rate.first_event_utc is not None and rate.last_event_utc is not None
        assert rate.now_utc - window * 3600 <= rate.first_event_utc <= rate.last_event_utc <= rate.now_utc + 5
        assert history_span(rate, window) is not None
    size = rate.size_sample
    assert 0 < size.other_records <= 50 and size.other_xml_chars > 200 * size.other_records
    if rate.source == "Security/4688":
        assert 0 < size.process_records <= 50 and size.with_command_line <= size.process_records
        result = figures(Measurement(rate, window), EstimateSettings())
        # a 4688 record is about 0.46-2.3 KB on disk (events_detections.md 2.4); allow a wide margin
        assert result.record_bytes_measured and 200 < result.record_bytes < 6000, result.record_bytes


def test_live_sample_counts_starts_and_cleans_up(live: PsrpConnector) -> None:
    sample = live.run(MEASURE_SAMPLE, SampleParams(sample_seconds=5), timeout=60)
    assert 4.5 <= sample.seconds <= 15 and sample.count >= 0
    assert abs(sample.start_utc - time.time()) < 600
    # Run twice in the same runspace: a leftover subscription with the same source would fail the second run.
    again = live.run(MEASURE_SAMPLE, SampleParams(sample_seconds=2), timeout=60)
    assert again.seconds >= 1.5


def test_the_smallest_time_budget_bounds_the_scan_and_says_where_it_stopped(live: PsrpConnector) -> None:
    # The lab models a reader that scans at a fixed rate and a budget checked at every record, with no single
    # ReadEvent waiting past it (EventLogReader.ReadEvent(TimeSpan)). On Windows: the script answers within the
    # deadline, and a stop is reported with the source it was reading, even with nothing counted.
    params = RateParams(window_hours=8784, size_sample_count=5000, max_records=1000000000, time_budget_seconds=10)
    rate = live.run(MEASURE_RATE, params, timeout=60)  # a stopped pipeline would fail the test
    if rate.truncated:
        assert rate.truncated_by in ("TimeBudget", "MaxRecords") and rate.truncated_in
        if not rate.source:
            assert rate.total == 0 and rate.counted_from_utc is None
        else:
            assert rate.truncated_in == rate.source and rate.counted_from_utc is not None
    else:
        assert rate.truncated_in is None
