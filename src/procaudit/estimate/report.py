"""``procaudit estimate``: the report, its group totals, and the run over hosts.

JSON shape (``EstimateReport.model_dump(mode="json")``), stable within ``schema`` version 1::

    {"schema": "procaudit.estimate/1", "generated": "...", "settings": {...},
     "hosts": [{"host", "address", "group", "groups", "status": "OK|UNKNOWN|ERROR", "lab",
                "estimate": {HostFigures} | null, "error": {"kind", "message"} | null, "reason": str | null}],
     "groups": [{"group", "hosts", "estimated", "events_per_day", ...}], "totals": {...same as a group...}}

``status`` is OK with an estimate, UNKNOWN when no method applied (no history, no sample), ERROR when the host
could not be measured (unreachable, timeout, script error ...).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import BaseModel, Field, ValidationError

from procaudit.errors import UserInputError
from procaudit.estimate.compute import EstimateSettings, HostFigures, NoMethod, figures
from procaudit.estimate.measure import Measurement, measure_host, stopped_before_counting, stopped_note
from procaudit.fanout import ConnectorFactory, HostOutcome, run_on_hosts
from procaudit.readiness.engine import HostError
from procaudit.transport.base import Connector, HostTarget

SCHEMA: Final = "procaudit.estimate/1"
Status = Literal["OK", "UNKNOWN", "ERROR"]


class EstimateHost(BaseModel):
    host: str
    address: str
    group: str
    """The host's most specific inventory group (charts stack by it)."""
    groups: list[str]
    status: Status
    lab: bool = False
    estimate: HostFigures | None = None
    reason: str | None = None
    """Why there is no estimate (status UNKNOWN)."""
    error: HostError | None = None


class GroupTotals(BaseModel):
    group: str
    hosts: int
    estimated: int
    events_per_day: float
    events_per_sec_peak: float
    """Sum of the hosts' peak-hour rates: an upper bound, as peaks need not coincide."""
    process_bytes_per_day: int
    added_bytes_per_day: int
    forwarded_bytes_per_day: int
    log_size_changes: int


class EstimateReport(BaseModel):
    schema_id: Literal["procaudit.estimate/1"] = Field(
        default=SCHEMA, validation_alias="schema", serialization_alias="schema"
    )
    generated: datetime
    settings: EstimateSettings
    hosts: list[EstimateHost]
    groups: list[GroupTotals]
    totals: GroupTotals
    interrupted: bool = False

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2) + "\n"

    @property
    def failed(self) -> int:
        return sum(1 for h in self.hosts if h.status == "ERROR")


def load_estimate(path: str, text: str) -> EstimateReport:
    """Read an estimate JSON file written by ``procaudit estimate --format json``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UserInputError(f'{path}: not a procaudit estimate (expected "schema": "{SCHEMA}")')
    try:
        return EstimateReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserInputError(f"{path}: not a valid procaudit estimate: {where}: {first['msg']}") from None


def primary_group(groups: list[str]) -> str:
    """The most specific group (inventory groups come shallow first, then by name); 'ungrouped' for none."""
    return groups[-1] if groups else "ungrouped"


def totals(name: str, hosts: list[EstimateHost]) -> GroupTotals:
    estimated = [h.estimate for h in hosts if h.estimate is not None]
    return GroupTotals(
        group=name,
        hosts=len(hosts),
        estimated=len(estimated),
        events_per_day=round(sum(e.events_per_day for e in estimated), 1),
        events_per_sec_peak=round(sum(e.events_per_sec_peak for e in estimated), 4),
        process_bytes_per_day=sum(round(e.process_bytes_per_day) for e in estimated),
        added_bytes_per_day=sum(round(e.added_bytes_per_day) for e in estimated),
        forwarded_bytes_per_day=sum(round(e.forwarded_bytes_per_day) for e in estimated),
        log_size_changes=sum(1 for e in estimated if e.max_size_change is not None),
    )


def build_report(
    hosts: list[EstimateHost], settings: EstimateSettings, *, generated: datetime, interrupted: bool = False
) -> EstimateReport:
    by_group: dict[str, list[EstimateHost]] = {}
    for host in hosts:
        by_group.setdefault(host.group, []).append(host)
    return EstimateReport(
        generated=generated,
        settings=settings,
        hosts=hosts,
        groups=[totals(name, members) for name, members in sorted(by_group.items())],
        totals=totals("all", hosts),
        interrupted=interrupted,
    )


def _host(outcome: HostOutcome[Measurement], settings: EstimateSettings, groups: list[str]) -> EstimateHost:
    target = outcome.target
    host = EstimateHost(
        host=target.name,
        address=target.address,
        group=primary_group(groups),
        groups=groups,
        lab=target.is_lab,
        status="ERROR",
    )
    if outcome.value is None:
        error = outcome.error
        assert error is not None
        host.error = HostError(kind=error.kind, message=str(error))
        return host
    try:
        host.estimate = figures(outcome.value, settings)
        host.status = "OK"
    except NoMethod:
        host.status = "UNKNOWN"
        rate = outcome.value.rate
        history = (
            stopped_note(rate) if stopped_before_counting(rate) else "no 4688, Sysmon 1 or 4689 history in the window"
        )
        host.reason = history + (
            "; live sampling is off (--sample 0)" if settings.sample_seconds <= 0 else "; the live sample failed"
        )
    return host


def estimate(
    targets: list[HostTarget],
    connect: ConnectorFactory,
    settings: EstimateSettings,
    *,
    groups: dict[str, list[str]] | None = None,
    workers: int = 32,
    on_done: Callable[[HostOutcome[Measurement]], None] | None = None,
    now: datetime | None = None,
) -> EstimateReport:
    """Measure every host (in parallel) and build the report. ``groups`` maps host -> inventory groups."""

    def job(connector: Connector) -> Measurement:
        return measure_host(
            connector,
            settings.window_hours,
            settings.sample_seconds,
            settings.size_sample,
            max_records=settings.max_records,
        )

    result = run_on_hosts(targets, job, connect, workers=workers, on_done=on_done)
    hosts = [_host(o, settings, (groups or {}).get(o.target.name, [])) for o in result.outcomes]
    return build_report(hosts, settings, generated=now or datetime.now(UTC), interrupted=result.interrupted)
