"""``procaudit plan``: order hosts into waves from an estimate, so no wave floods the ingest pipeline.

Rules (the JSON records them so a reviewer can check the plan against them):

* Wave 1 is the canary: ``--canary N`` hosts (or ``P%`` of the planned hosts, at least one), picked round-robin
  over the inventory groups, in each group the host whose volume is closest to the group's median - typical
  hosts, not the quietest - preferring hosts that do not log 4688 yet (where the change is real), and never a
  domain controller or a busy host while others are available.
* Then standard hosts, then busy hosts (``events_per_day >= --busy-events-per-day``), then domain
  controllers, each in waves of ascending volume, so the pipeline ramps up and the heaviest hosts come when
  the earlier waves have shown the estimate holds. Then the hosts whose volume is unknown.
* Every wave adds at most ``--max-events-per-sec`` (the sum of its hosts' peak-hour rates, an upper bound as
  peaks need not coincide) and holds at most ``--max-hosts`` hosts. One host above the rate cap on its own
  gets a wave of its own, marked ``over_rate_cap``: it cannot be split.
* Hosts the estimate could not measure (status UNKNOWN or ERROR, or absent from the estimate) are planned
  last, in waves of at most ``--max-hosts``, marked ``volume_unknown``: excluding them would leave them
  silently unconfigured; last, they come after every other wave's soak has tested the pipeline.
* Each wave records the soak time and the failure threshold ``deploy`` applies: as in Ansible's
  ``max_fail_percentage``, a wave stops the rollout when its failed hosts EXCEED that percentage.

The same estimate, inventory selection and settings always give the same plan, byte for byte: hosts are
ordered by explicit sort keys and the plan holds no timestamps of its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, Field

from procaudit.errors import UserInputError
from procaudit.estimate.report import EstimateHost, EstimateReport
from procaudit.rollout.planfile import gate_stops

SCHEMA: Final = "procaudit.plan/1"
WaveKind = Literal["canary", "standard", "busy", "dc", "unknown"]
_KIND_ORDER: tuple[WaveKind, ...] = ("standard", "busy", "dc", "unknown")
_CANARY = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<percent>%?)\s*$")


class PlanSettings(BaseModel):
    canary: str = "1"
    """As given: a host count (``2``) or a share of the planned hosts (``5%``)."""
    max_events_per_sec: float = Field(default=50.0, gt=0)
    max_hosts: int = Field(default=50, ge=1)
    soak_seconds: float = Field(default=1800.0, ge=0)
    max_fail_percent: float = Field(default=0.0, ge=0, le=100)
    busy_events_per_day: float = Field(default=20000.0, gt=0)


class LogSizeChange(BaseModel):
    host: str
    current_max_size: int
    requested_max_size: int
    retention_days: float


class PlanHost(BaseModel):
    host: str
    status: Literal["PLANNED"] = "PLANNED"
    wave: int
    group: str
    lab: bool = False
    role: str | None = None
    dc: bool = False
    busy: bool = False
    volume_known: bool = True
    estimate_status: str
    """OK, UNKNOWN, ERROR, or MISSING (not in the estimate)."""
    reason: str | None = None
    """Why the volume is unknown."""
    method: str | None = None
    confidence: str | None = None
    already_audited: bool = False
    """4688 is logged already: turning it on changes little here (a canary learns less from it)."""
    events_per_day: float | None = None
    events_per_sec_mean: float | None = None
    events_per_sec_peak: float | None = None
    added_bytes_per_day: int | None = None
    forwarded_bytes_per_day: int | None = None
    log_size_change: LogSizeChange | None = None


class Wave(BaseModel):
    index: int
    """1-based; deploy runs waves in this order."""
    name: str
    kind: WaveKind
    hosts: list[str]
    dcs: list[str] = []
    busy: list[str] = []
    volume_unknown: list[str] = []
    added_events_per_day: float
    added_events_per_sec_mean: float
    added_events_per_sec_peak: float
    cumulative_events_per_sec_peak: float
    added_bytes_per_day: int
    """Growth of the Security logs (hosts that log 4688 already add only the command-line uplift)."""
    forwarded_bytes_per_day: int
    log_size_changes: list[LogSizeChange]
    soak_seconds: float
    max_fail_percent: float
    over_rate_cap: bool = False
    notes: list[str] = []

    def should_stop(self, failed: int) -> bool:
        return gate_stops(failed, len(self.hosts), self.max_fail_percent)


class PlanTotals(BaseModel):
    hosts: int
    waves: int
    volume_unknown: int
    events_per_day: float
    events_per_sec_peak: float
    added_bytes_per_day: int
    forwarded_bytes_per_day: int
    log_size_changes: int


class Plan(BaseModel):
    schema_id: Literal["procaudit.plan/1"] = Field(
        default=SCHEMA, validation_alias="schema", serialization_alias="schema"
    )
    estimate_sha256: str
    estimate_generated: datetime
    retention_days: float
    settings: PlanSettings
    canary_hosts: int
    waves: list[Wave]
    hosts: list[PlanHost]
    totals: PlanTotals
    notes: list[str] = []

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2) + "\n"


def canary_count(spec: str, planned: int) -> int:
    """Hosts in the canary wave for ``--canary`` (``N`` or ``P%``), at least 1 and at most ``planned``."""
    match = _CANARY.match(spec)
    if not match:
        raise UserInputError(f"--canary {spec!r}: a host count (2) or a percentage of the hosts (5%)")
    number = float(match.group("number"))
    if match.group("percent"):
        if not 0 < number <= 100:
            raise UserInputError(f"--canary {spec!r}: a percentage above 0 and at most 100")
        count = math.ceil(planned * number / 100 - 1e-9)
    else:
        if number != int(number) or number < 1:
            raise UserInputError(f"--canary {spec!r}: a whole number of hosts, at least 1")
        count = int(number)
    return max(1, min(count, planned)) if planned else 0


@dataclass(frozen=True)
class _Candidate:
    host: PlanHost

    @property
    def peak(self) -> float:
        return self.host.events_per_sec_peak or 0.0

    @property
    def sort_key(self) -> tuple[float, str]:
        return (self.peak, self.host.host)


def _plan_host(
    name: str, group: str, estimated: EstimateHost | None, settings: PlanSettings, retention_days: float
) -> PlanHost:
    if estimated is None:
        return PlanHost(
            host=name, wave=0, group=group, volume_known=False, estimate_status="MISSING", reason="not in the estimate"
        )
    e = estimated.estimate
    if e is None:
        reason = f"{estimated.error.kind}: {estimated.error.message}" if estimated.error else estimated.reason
        return PlanHost(
            host=name,
            wave=0,
            group=group,
            lab=estimated.lab,
            volume_known=False,
            estimate_status=estimated.status,
            reason=reason,
        )
    change = (
        LogSizeChange(
            host=name,
            current_max_size=e.log.max_size,
            requested_max_size=e.max_size_change,
            retention_days=retention_days,
        )
        if e.max_size_change is not None
        else None
    )
    dc = e.role == "dc"
    return PlanHost(
        host=name,
        wave=0,
        group=group,
        lab=estimated.lab,
        role=e.role,
        dc=dc,
        busy=not dc and e.events_per_day >= settings.busy_events_per_day,
        estimate_status=estimated.status,
        method=e.method,
        confidence=e.confidence,
        already_audited=e.already_audited,
        events_per_day=e.events_per_day,
        events_per_sec_mean=e.events_per_sec_mean,
        events_per_sec_peak=e.events_per_sec_peak,
        added_bytes_per_day=e.added_bytes_per_day,
        forwarded_bytes_per_day=e.forwarded_bytes_per_day,
        log_size_change=change,
    )


def _kind(host: PlanHost) -> WaveKind:
    if not host.volume_known:
        return "unknown"
    if host.dc:
        return "dc"
    return "busy" if host.busy else "standard"


def _fits(wave: list[_Candidate], candidate: _Candidate, settings: PlanSettings, *, rate_cap: bool) -> bool:
    if len(wave) >= settings.max_hosts:
        return False
    if not rate_cap or not wave:
        return True
    # A tiny tolerance keeps float sums from splitting a wave that sits exactly on the cap.
    return sum(c.peak for c in wave) + candidate.peak <= settings.max_events_per_sec * (1 + 1e-9)


def _closeness(median: float) -> Callable[[_Candidate], tuple[bool, float, float, str]]:
    """Hosts where the change is real first, then the one closest to the group's median volume."""
    return lambda c: (c.host.already_audited, abs(c.peak - median), c.peak, c.host.host)


def _pick_canary(candidates: list[_Candidate], count: int, settings: PlanSettings) -> list[_Candidate]:
    """Typical hosts, round-robin over groups; DCs, busy and unknown hosts only when nothing else is left.

    A canary mixes no kinds: the first kind that yields hosts fills it. Hosts above the rate cap on their own
    are no canary material; if nothing else exists, the quietest host is the canary alone.
    """
    cap = settings.max_events_per_sec
    for kind in ("standard", "busy", "dc", "unknown"):
        pool = [c for c in candidates if _kind(c.host) == kind and (kind == "unknown" or c.peak <= cap)]
        by_group: dict[str, list[_Candidate]] = {}
        for c in pool:
            by_group.setdefault(c.host.group, []).append(c)
        queues = []
        for group in sorted(by_group):
            members = by_group[group]
            queues.append(sorted(members, key=_closeness(statistics.median(c.peak for c in members))))
        chosen: list[_Candidate] = []
        depth = 0
        while len(chosen) < count and any(depth < len(q) for q in queues):
            for queue in queues:
                if (
                    depth < len(queue)
                    and len(chosen) < count
                    and _fits(chosen, queue[depth], settings, rate_cap=kind != "unknown")
                ):
                    chosen.append(queue[depth])
            depth += 1
        if chosen:
            return chosen
    return sorted(candidates, key=lambda c: c.sort_key)[:1]


def _waves_of(candidates: list[_Candidate], kind: WaveKind, settings: PlanSettings) -> list[list[_Candidate]]:
    """Next-fit in ascending volume (unknown: by name), within both caps."""
    ordered = sorted(candidates, key=(lambda c: c.host.host) if kind == "unknown" else (lambda c: c.sort_key))
    waves: list[list[_Candidate]] = []
    current: list[_Candidate] = []
    for candidate in ordered:
        if current and not _fits(current, candidate, settings, rate_cap=kind != "unknown"):
            waves.append(current)
            current = []
        current.append(candidate)
    if current:
        waves.append(current)
    return waves


def build_plan(
    estimate: EstimateReport,
    selected: Iterable[tuple[str, str]],
    settings: PlanSettings,
    *,
    estimate_sha256: str,
) -> Plan:
    """The plan for the ``selected`` (host, group) pairs from ``estimate``. Pure and deterministic."""
    by_name = {h.host: h for h in estimate.hosts}
    chosen = sorted(set(selected))
    names = [name for name, _ in chosen]
    if len(set(names)) != len(names):
        raise UserInputError("a host appears twice in the selection")
    notes = []
    retention = estimate.settings.retention_days
    hosts = []
    for name, group in chosen:
        hosts.append(_plan_host(name, group, by_name.get(name), settings, retention))
    outside = sorted(set(by_name) - set(names))
    if outside:
        notes.append(f"{len(outside)} host(s) in the estimate are not in the selected inventory and are not planned")
    unknown = [h for h in hosts if not h.volume_known]
    if unknown:
        notes.append(f"{len(unknown)} host(s) of unknown volume are planned last, in waves marked volume_unknown")

    candidates = [_Candidate(h) for h in hosts]
    count = canary_count(settings.canary, len(hosts))
    if count > settings.max_hosts:
        notes.append(f"the canary is capped at --max-hosts {settings.max_hosts} (asked for {count})")
        count = settings.max_hosts
    groups_of_waves: list[tuple[WaveKind, list[_Candidate]]] = []
    canary = _pick_canary(candidates, count, settings) if hosts else []
    if canary and len(canary) < count:
        notes.append(
            f"the canary holds {len(canary)} host(s), not {count}: the rate cap or the host kinds allow no more"
        )
    if canary:
        groups_of_waves.append(("canary", canary))
    taken = {c.host.host for c in canary}
    rest = [c for c in candidates if c.host.host not in taken]
    for kind in _KIND_ORDER:
        for members in _waves_of([c for c in rest if _kind(c.host) == kind], kind, settings):
            groups_of_waves.append((kind, members))

    waves = []
    cumulative = 0.0
    for index, (kind, members) in enumerate(groups_of_waves, start=1):
        wave = _wave(index, kind, [c.host for c in members], settings, cumulative)
        cumulative = wave.cumulative_events_per_sec_peak
        waves.append(wave)
        for host in members:
            host.host.wave = index
    ordered_hosts = sorted(hosts, key=lambda h: (h.wave, h.host))
    known = [h for h in hosts if h.volume_known]
    return Plan(
        estimate_sha256=estimate_sha256,
        estimate_generated=estimate.generated,
        retention_days=retention,
        settings=settings,
        canary_hosts=len(canary),
        waves=waves,
        hosts=ordered_hosts,
        totals=PlanTotals(
            hosts=len(hosts),
            waves=len(waves),
            volume_unknown=len(unknown),
            events_per_day=round(sum(h.events_per_day or 0.0 for h in known), 1),
            events_per_sec_peak=round(sum(h.events_per_sec_peak or 0.0 for h in known), 4),
            added_bytes_per_day=sum(h.added_bytes_per_day or 0 for h in known),
            forwarded_bytes_per_day=sum(h.forwarded_bytes_per_day or 0 for h in known),
            log_size_changes=sum(1 for h in hosts if h.log_size_change is not None),
        ),
        notes=notes,
    )


def _wave(index: int, kind: WaveKind, hosts: list[PlanHost], settings: PlanSettings, before: float) -> Wave:
    hosts = sorted(hosts, key=lambda h: h.host)
    known = [h for h in hosts if h.volume_known]
    peak = sum(h.events_per_sec_peak or 0.0 for h in known)
    notes = []
    over = len(hosts) == 1 and peak > settings.max_events_per_sec
    if over:
        notes.append(
            f"{hosts[0].host} alone adds {peak:.2f} events/s at its peak, above --max-events-per-sec "
            f"{settings.max_events_per_sec:g}: it gets a wave of its own"
        )
    dcs = [h.host for h in hosts if h.dc]
    if dcs:
        notes.append(f"domain controller(s): {', '.join(dcs)}")
    busy = [h.host for h in hosts if h.busy]
    if busy:
        notes.append(f"busy host(s) (>= {settings.busy_events_per_day:,.0f} events/day): {', '.join(busy)}")
    unknown = [h.host for h in hosts if not h.volume_known]
    if unknown:
        notes.append(f"{len(unknown)} host(s) of unknown volume: watch the pipeline during the soak")
    return Wave(
        index=index,
        name="canary" if kind == "canary" else f"wave-{index:02d}",
        kind=kind,
        hosts=[h.host for h in hosts],
        dcs=dcs,
        busy=busy,
        volume_unknown=unknown,
        added_events_per_day=round(sum(h.events_per_day or 0.0 for h in known), 1),
        added_events_per_sec_mean=round(sum(h.events_per_sec_mean or 0.0 for h in known), 4),
        added_events_per_sec_peak=round(peak, 4),
        cumulative_events_per_sec_peak=round(before + peak, 4),
        added_bytes_per_day=sum(h.added_bytes_per_day or 0 for h in known),
        forwarded_bytes_per_day=sum(h.forwarded_bytes_per_day or 0 for h in known),
        log_size_changes=[h.log_size_change for h in hosts if h.log_size_change is not None],
        soak_seconds=settings.soak_seconds,
        max_fail_percent=settings.max_fail_percent,
        over_rate_cap=over,
        notes=notes,
    )


def estimate_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
