"""``estimate`` against the lab's ground truth, over real PSRP, at chosen moments of the week.

The truth is computed here from each host's ``activity.per_day`` and the lab's documented rhythm (business
hours 08-18 carry a role's share of the day, weekend days run at a role's level of a weekday; see
procaudit.lab.eventlog), not with the functions the lab handler or the estimator use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from procaudit.errors import DeadlineError
from procaudit.estimate import EstimateReport, EstimateSettings, estimate
from procaudit.estimate.measure import MEASURE_SAMPLE, SampleParams
from procaudit.inventory import Overrides, load_inventory, to_targets
from procaudit.lab.model import LabHost
from procaudit.transport.base import HostTarget
from procaudit.transport.psrp import PsrpConnector

from .conftest import LabHandle, start_lab

PROFILES = [
    "ready",
    "rds",
    "small-log",
    "win7-no-kb",
    "cmdline-off",
    "workstation",
    "gpo-managed",
    "fresh-2019",
    "dc",
    "legacy-override",
    "scom",
]
EXPECTED_METHOD = {
    "lab-ready-01": "4688",
    "lab-rds-01": "4688",
    "lab-small-log-01": "4688",
    "lab-win7-no-kb-01": "4688",
    "lab-cmdline-off-01": "4688",
    "lab-workstation-01": "sysmon1",
    "lab-gpo-managed-01": "4689",
    "lab-fresh-2019-01": "sample",
    "lab-dc-01": "sample",
    "lab-legacy-override-01": "sample",
    "lab-scom-01": "sample",
}
# (business-hours share of a day, weekend day level relative to a weekday): the lab's rhythm per role.
LAB_RHYTHM = {"dc": (0.5, 0.9), "rds": (0.85, 0.2), "workstation": (0.8, 0.1)}
MEMBER_RHYTHM = (0.6, 0.7)
# (weekday, hour) of the moments the lab's clock is pinned to: a Wednesday morning, a Saturday night, a Monday evening.
MOMENTS = {"wed-10:30": (2, 10), "sat-03:30": (5, 3), "mon-19:30": (0, 19)}


def expected_starts(host: LabHost, start: datetime, end: datetime) -> float:
    """Process starts the lab's rhythm puts in [start, end), without its hourly noise."""
    business, weekend = LAB_RHYTHM.get(host.role, MEMBER_RHYTHM)
    week_mean = (5 + 2 * weekend) / 7
    total = 0.0
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        overlap = (min(hour + timedelta(hours=1), end) - max(hour, start)) / timedelta(hours=1)
        share = business / 10 if 8 <= hour.hour < 18 else (1 - business) / 14
        level = (weekend if hour.weekday() >= 5 else 1.0) / week_mean
        total += host.activity.per_day * share * level * max(overlap, 0.0)
        hour += timedelta(hours=1)
    return total


def pinned(weekday: int, hour: int) -> datetime:
    """The next such moment at least a day from now (the profiles' audit histories are relative to now)."""
    moment = (datetime.now(UTC) + timedelta(days=1)).replace(hour=hour, minute=30, second=0, microsecond=0)
    while moment.weekday() != weekday:
        moment += timedelta(days=1)
    return moment


def targets(handle: LabHandle, **overrides: object) -> list[HostTarget]:
    inv = load_inventory(handle.inventory)
    return to_targets(inv, inv.select(None), Overrides(**overrides))  # type: ignore[arg-type]


def run_estimate(handle: LabHandle, settings: EstimateSettings, **overrides: object) -> EstimateReport:
    inv = load_inventory(handle.inventory)
    groups = {name: host.groups for name, host in inv.hosts.items()}
    return estimate(
        targets(handle, **overrides), lambda t: PsrpConnector(t, handle.credentials), settings, groups=groups
    )


@dataclass
class Run:
    moment: datetime
    report: EstimateReport


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    yield from start_lab(tmp_path_factory.mktemp("estimate-lab"), PROFILES)


@pytest.fixture(scope="module", params=sorted(MOMENTS))
def run(request: pytest.FixtureRequest, estate: LabHandle) -> Run:
    moment = pinned(*MOMENTS[request.param])
    estate.lab.world.clock = lambda: moment
    # The default live sample (5 minutes): the lab answers for it without waiting it out (it sleeps at most 2 s).
    report = run_estimate(estate, EstimateSettings())
    return Run(moment, report)


def test_every_host_gets_the_method_its_history_allows(run: Run) -> None:
    methods = {h.host: h.estimate.method if h.estimate else h.status for h in run.report.hosts}
    assert methods == EXPECTED_METHOD
    assert all(h.status == "OK" and h.lab for h in run.report.hosts)
    confidence = {h.host: h.estimate.confidence for h in run.report.hosts if h.estimate}
    assert confidence["lab-ready-01"] == "high"  # a week of 4688 in a 512 MB log
    assert confidence["lab-rds-01"] == "low"  # 60,000 starts a day overwrite a 64 MB log within a day
    assert {confidence[h] for h, m in EXPECTED_METHOD.items() if m == "sample"} == {"low"}


@pytest.mark.parametrize("name", sorted(EXPECTED_METHOD))
def test_daily_estimate_within_20_percent_of_the_truth(run: Run, estate: LabHandle, name: str) -> None:
    host = estate.lab.host(name)
    result = next(h for h in run.report.hosts if h.host == name).estimate
    assert result is not None
    error = result.events_per_day / host.activity.per_day - 1
    assert abs(error) <= 0.20, f"{name} ({result.method}) at {run.moment:%a %H:%M}: {error:+.1%}"


@pytest.mark.parametrize("name", sorted(EXPECTED_METHOD))
def test_observed_count_matches_the_rhythm_over_what_was_observed(run: Run, estate: LabHandle, name: str) -> None:
    """The raw count (before any scaling) against the truth for exactly the covered interval."""
    host = estate.lab.host(name)
    result = next(h for h in run.report.hosts if h.host == name).estimate
    assert result is not None
    covered = timedelta(seconds=result.coverage_seconds)
    if result.method == "sample":
        start = run.moment
        truth = expected_starts(host, start, start + covered)
    else:
        truth = expected_starts(host, run.moment - covered, run.moment)
    assert abs(result.observed_events / truth - 1) <= 0.20, (name, result.observed_events, truth)


def test_peak_hour_near_the_busiest_hour_of_the_rhythm(run: Run, estate: LabHandle) -> None:
    for h in run.report.hosts:
        assert h.estimate is not None
        host = estate.lab.host(h.host)
        business, weekend = LAB_RHYTHM.get(host.role, MEMBER_RHYTHM)
        busiest = host.activity.per_day * business / 10 / ((5 + 2 * weekend) / 7)
        # the lab's hourly noise lifts the busiest hour of a week by up to 15%
        assert 0.8 * busiest <= h.estimate.peak_hour_events <= 1.2 * 1.15 * busiest, (h.host, busiest)


def test_record_size_is_measured_where_4688_is_logged(run: Run, estate: LabHandle) -> None:
    for h in run.report.hosts:
        assert h.estimate is not None
        e = h.estimate
        if e.method != "4688":
            assert not e.record_bytes_measured and e.record_bytes == 800
            continue
        true_size = estate.lab.host(h.host).security_log.record_size
        uplift = 296 if h.host in ("lab-cmdline-off-01", "lab-win7-no-kb-01") else 0
        assert e.record_bytes_measured
        assert abs((e.record_bytes - uplift) / true_size - 1) <= 0.10, (h.host, e.record_bytes, true_size)
        assert ("carry no command line" in " ".join(e.notes)) == bool(uplift)


def test_days_kept_and_size_needed_follow_the_log(run: Run, estate: LabHandle) -> None:
    """Days the log keeps at the projected rate, against the model's own traffic."""
    for name in ("lab-ready-01", "lab-rds-01", "lab-fresh-2019-01", "lab-gpo-managed-01", "lab-dc-01"):
        host = estate.lab.host(name)
        e = next(h for h in run.report.hosts if h.host == name).estimate
        assert e is not None
        log = host.security_log
        per_day = host.activity.per_day
        terminations = per_day * log.record_size if 4689 in host.logging_since else 0
        truth_rate = per_day * log.record_size + terminations + log.other_events_per_day * 600
        truth_days = log.max_size / truth_rate
        assert abs(e.days_kept / truth_days - 1) <= 0.20, (name, e.days_kept, truth_days)  # type: ignore[operator]
        assert e.max_size_needed is not None and e.max_size_needed % 65536 == 0
        assert abs(e.max_size_needed / (truth_rate * 14) - 1) <= 0.20
        assert (e.max_size_change is not None) == (e.max_size_needed > log.max_size)
    ready = next(h for h in run.report.hosts if h.host == "lab-ready-01").estimate
    assert ready is not None and ready.already_audited and ready.added_bytes_per_day == 0
    assert ready.max_size_change is None  # 512 MB keeps five weeks


def test_group_totals_add_up(run: Run) -> None:
    report = run.report
    assert sum(g.hosts for g in report.groups) == len(report.hosts) == report.totals.hosts
    assert report.totals.events_per_day == pytest.approx(
        sum(h.estimate.events_per_day for h in report.hosts if h.estimate), abs=1
    )
    assert {g.group for g in report.groups} == {"dcs", "rds", "servers", "workstations", "scom"}


def test_no_history_and_no_sample_is_unknown_not_a_guess(estate: LabHandle) -> None:
    report = run_estimate(estate, EstimateSettings(sample_seconds=0))
    status = {h.host: h.status for h in report.hosts}
    for name, method in EXPECTED_METHOD.items():
        assert status[name] == ("UNKNOWN" if method == "sample" else "OK"), name
    unknown = next(h for h in report.hosts if h.host == "lab-dc-01")
    assert unknown.estimate is None and unknown.reason is not None and "--sample 0" in unknown.reason


def test_the_sample_deadline_follows_the_sample_length(tmp_path: Path) -> None:
    for handle in start_lab(tmp_path, ["fresh-2019"]):
        # The lab waits a 2 s sample out in full; the per-script deadline alone (1 s) would stop it.
        with handle.connector("lab-fresh-2019-01") as conn, pytest.raises(DeadlineError):
            conn.run(MEASURE_SAMPLE, SampleParams(sample_seconds=2), timeout=1.0)
        report = run_estimate(handle, EstimateSettings(sample_seconds=2), script_timeout=1.0)
        (host,) = report.hosts
        assert host.status == "OK" and host.estimate is not None and host.estimate.method == "sample", host
        assert host.estimate.coverage_seconds == 2


def test_failures_are_per_host(tmp_path: Path) -> None:
    for handle in start_lab(tmp_path, ["ready", "dc", "rds"], ["lab-dc-01=down", "lab-rds-01=hang"]):
        report = run_estimate(handle, EstimateSettings(sample_seconds=1), connect_timeout=1, script_timeout=2)
        by_host = {h.host: h for h in report.hosts}
        assert by_host["lab-ready-01"].status == "OK"
        assert by_host["lab-dc-01"].status == "ERROR" and by_host["lab-dc-01"].error.kind == "unreachable"  # type: ignore[union-attr]
        assert by_host["lab-rds-01"].status == "ERROR" and by_host["lab-rds-01"].error.kind == "timeout"  # type: ignore[union-attr]
        assert report.failed == 2 and report.totals.estimated == 1


def wire_bytes(handle: LabHandle, name: str) -> int:
    endpoint = handle.endpoint(name)
    endpoint.stats.reset()
    inv = load_inventory(handle.inventory)
    target = to_targets(inv, inv.select(name), Overrides())
    report = estimate(target, lambda t: PsrpConnector(t, handle.credentials), EstimateSettings(sample_seconds=0))
    assert report.hosts[0].status == "OK"
    return int(endpoint.stats.bytes_in + endpoint.stats.bytes_out)


def test_a_million_events_cost_the_wire_what_a_hundred_do(tmp_path: Path) -> None:
    for handle in start_lab(tmp_path, ["ready", "ready"]):
        small, large = handle.lab.host("lab-ready-01"), handle.lab.host("lab-ready-02")
        small.activity.per_day = 15  # about 1e2 4688 in the 7-day window
        large.activity.per_day = 142_857  # about 1e6
        large.security_log.max_size = 2 * 1024**3  # so the log keeps the whole week
        counted = {}
        for name in ("lab-ready-01", "lab-ready-02"):
            report = run_estimate(handle, EstimateSettings(sample_seconds=0))
            e = next(h for h in report.hosts if h.host == name).estimate
            assert e is not None
            counted[name] = e.observed_events
        assert 50 <= counted["lab-ready-01"] <= 200 and 900_000 <= counted["lab-ready-02"] <= 1_100_000
        few, many = wire_bytes(handle, "lab-ready-01"), wire_bytes(handle, "lab-ready-02")
        # Only digits grow: 169 hourly counts of up to 4 more digits each, before encryption overhead.
        assert many - few < 2048, (few, many)
        assert many < 0.001 * counted["lab-ready-02"] * 800  # a thousandth of the events' bytes on disk
