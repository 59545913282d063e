"""Estimates of random estates, for the plan's property tests."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from procaudit.estimate.compute import EstimateSettings, HostFigures, SecurityLogState
from procaudit.estimate.report import EstimateHost, HostError, build_report

GENERATED = datetime(2025, 3, 12, 10, 30, tzinfo=UTC)
GROUPS = ["dcs", "rds", "servers", "web", "workstations"]


def figures(role: str, per_day: float, *, change: int | None = None, audited: bool = False) -> HostFigures:
    peak = per_day * 0.08
    return HostFigures(
        role=role,  # type: ignore[arg-type]
        method="4688" if audited else "sample",
        confidence="high" if audited else "low",
        observed_events=int(per_day * 7),
        coverage_seconds=604800,
        rhythm_factor=1.0,
        events_per_day=round(per_day, 1),
        mean_hour_events=round(per_day / 24, 2),
        peak_hour_events=round(peak, 1),
        peak_hour=None,
        events_per_sec_mean=round(per_day / 86400, 4),
        events_per_sec_peak=round(peak / 3600, 4),
        record_bytes=800.0,
        record_bytes_measured=audited,
        already_audited=audited,
        process_bytes_per_day=round(per_day * 800),
        added_bytes_per_day=0 if audited else round(per_day * 800),
        forwarded_bytes_per_day=round(per_day * 2800),
        projected_bytes_per_day=round(per_day * 800 + 12e6),
        days_kept=1.0,
        max_size_needed=change,
        max_size_change=change,
        log=SecurityLogState(max_size=20 * 1024 * 1024, mode="Circular"),
        notes=[],
    )


def host(
    name: str,
    group: str,
    role: str = "member",
    per_day: float = 3000,
    *,
    status: str = "OK",
    change: int | None = None,
    audited: bool = False,
) -> EstimateHost:
    base = EstimateHost(host=name, address="192.0.2.1", group=group, groups=[group], status=status, lab=False)  # type: ignore[arg-type]
    if status == "OK":
        base.estimate = figures(role, per_day, change=change, audited=audited)
    elif status == "ERROR":
        base.error = HostError(kind="unreachable", message="no answer")
    else:
        base.reason = "no history"
    return base


@st.composite
def estates(draw: st.DrawFn) -> list[EstimateHost]:
    count = draw(st.integers(min_value=1, max_value=40))
    hosts = []
    for i in range(count):
        group = draw(st.sampled_from(GROUPS))
        role = draw(st.sampled_from(["member", "member", "workstation", "dc", "rds"]))
        status = draw(st.sampled_from(["OK"] * 8 + ["ERROR", "UNKNOWN"]))
        per_day = draw(st.floats(min_value=0, max_value=400_000, allow_nan=False))
        change = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=4096).map(lambda n: n * 65536)))
        audited = draw(st.booleans())
        hosts.append(host(f"h{i:03d}", group, role, per_day, status=status, change=change, audited=audited))
    return hosts


def report_of(hosts: list[EstimateHost]):  # type: ignore[no-untyped-def]
    return build_report(hosts, EstimateSettings(), generated=GENERATED)
