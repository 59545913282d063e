"""``estimate`` when a host's counting is bounded (MaxRecords) and when its live sample is lost in transit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from procaudit.estimate import EstimateSettings, estimate
from procaudit.estimate.measure import MEASURE_SAMPLE, TIME_BUDGET_SHARE
from procaudit.inventory import Overrides, load_inventory, to_targets
from procaudit.lab import eventlog
from procaudit.lab.faults import Fault
from procaudit.remote import ScriptSpec
from procaudit.transport.base import HostTarget
from procaudit.transport.psrp import PsrpConnector

from .conftest import LabHandle, start_lab

pytestmark = pytest.mark.slow


def lab_targets(handle: LabHandle) -> list[HostTarget]:
    inv = load_inventory(handle.inventory)
    return to_targets(inv, inv.select(None), Overrides())


def run_estimate(handle: LabHandle, settings: EstimateSettings):  # type: ignore[no-untyped-def]
    return estimate(lab_targets(handle), lambda t: PsrpConnector(t, handle.credentials), settings)


def test_counting_stops_at_max_records_and_the_estimate_says_so(tmp_path: Path) -> None:
    for handle in start_lab(tmp_path, ["ready"]):
        whole = run_estimate(handle, EstimateSettings(sample_seconds=0)).hosts[0].estimate
        assert whole is not None and whole.observed_events > 5000 and not any("stopped" in n for n in whole.notes)
        report = run_estimate(handle, EstimateSettings(sample_seconds=0, max_records=5000))
        (host,) = report.hosts
        bounded = host.estimate
        assert host.status == "OK" and bounded is not None
        assert bounded.observed_events == 5000
        assert any("counting stopped at its record limit after 5,000 records" in n for n in bounded.notes)
        # The newest records only: the covered time shrinks, and the rate per day stays that of the host.
        assert bounded.coverage_seconds < whole.coverage_seconds / 2
        assert 0.5 < bounded.events_per_day / whole.events_per_day < 2.0


@pytest.fixture
def gpo_managed(tmp_path: Path) -> Iterator[LabHandle]:
    yield from start_lab(tmp_path, ["gpo-managed"])


def test_a_sample_lost_in_transit_falls_back_to_the_short_history_with_low_confidence(gpo_managed: LabHandle) -> None:
    handle = gpo_managed
    name = "lab-gpo-managed-01"
    # 4689 logged for six hours only: too short a history, so estimate takes a live sample too.
    handle.lab.host(name).logging_since[4689] = datetime.now(UTC) - timedelta(hours=6)
    endpoint = handle.endpoint(name)
    inv = load_inventory(handle.inventory)
    targets = to_targets(inv, inv.select(None), Overrides())

    class DropOnSample:
        """The lab connection, with the host's connection dropping from the moment the sample is sent."""

        def __init__(self, target: HostTarget) -> None:
            self.inner = PsrpConnector(target, handle.credentials)
            self.target = target

        def open(self) -> None:
            self.inner.open()

        def run(self, spec: ScriptSpec[Any, Any], params: Any, input: Any = None, timeout: Any = None) -> Any:
            if spec is MEASURE_SAMPLE:
                endpoint.faults.append(Fault("drop"))  # type: ignore[attr-defined]
            return self.inner.run(spec, params, input=input, timeout=timeout)

        def close(self) -> None:
            self.inner.close()

    report = estimate(targets, DropOnSample, EstimateSettings(sample_seconds=2))  # type: ignore[arg-type]
    (host,) = report.hosts
    assert host.status == "OK", host
    assert host.estimate is not None and host.estimate.method == "4689"
    assert host.estimate.confidence == "low"
    assert any(n.startswith("live sample failed (dropped") and "low confidence" in n for n in host.estimate.notes)


def test_a_time_budget_spent_before_anything_was_counted_is_not_reported_as_no_events(tmp_path: Path) -> None:
    for handle in start_lab(tmp_path, ["ready"]):
        whole = run_estimate(handle, EstimateSettings(sample_seconds=0)).hosts[0].estimate
        assert whole is not None and whole.method == "4688"
        # The host's reader crawls: the budget ends before the first matching record is reached.
        handle.lab.host(lab_targets(handle)[0].name).security_log.read_records_per_second = 0.001
        (host,) = run_estimate(handle, EstimateSettings(sample_seconds=0)).hosts
        assert host.status == "UNKNOWN" and host.estimate is None
        assert host.reason is not None and "time budget in Security/4688 before it counted any record" in host.reason
        assert "no 4688, Sysmon 1 or 4689 history" not in host.reason, host.reason
        # With a live sample the host is estimated from it, and the note says why not from history.
        (sampled,) = run_estimate(handle, EstimateSettings(sample_seconds=1)).hosts
        assert sampled.status == "OK" and sampled.estimate is not None and sampled.estimate.method == "sample"
        assert any("before it counted any record" in n for n in sampled.estimate.notes), sampled.estimate.notes


def test_a_time_budget_stop_counts_the_newest_records_and_says_so(tmp_path: Path) -> None:
    for handle in start_lab(tmp_path, ["ready"]):
        whole = run_estimate(handle, EstimateSettings(sample_seconds=0)).hosts[0].estimate
        assert whole is not None
        lab_host = handle.lab.host(lab_targets(handle)[0].name)
        now = handle.lab.world.clock()
        stats = eventlog.log_stats(lab_host, now)
        window = timedelta(hours=EstimateSettings().window_hours)
        in_window = stats.record_count * min(1.0, window / (now - stats.oldest))
        budget = int(lab_targets(handle)[0].options.script_timeout * TIME_BUDGET_SHARE)
        lab_host.security_log.read_records_per_second = in_window / budget / 3  # a third of the window in time
        (host,) = run_estimate(handle, EstimateSettings(sample_seconds=0)).hosts
        bounded = host.estimate
        assert host.status == "OK" and bounded is not None
        assert any("counting stopped at its time budget" in n for n in bounded.notes), bounded.notes
        assert bounded.observed_events < whole.observed_events / 2
        assert 0.5 < bounded.events_per_day / whole.events_per_day < 2.0
