"""``procaudit verify``: prove that 4688 with the command line is logged now, on each host.

On each host ``checks/Test-ProcessCreationEvent.ps1`` starts a harmless marker process,
``cmd.exe /d /c rem procaudit-verify-<nonce>`` (the convention the ``ProcauditVerifyCanary`` detection rule
matches), and polls the Security log for that process's 4688 within a timeout. The nonce is 32 lower-case hex
characters, fresh per host and run, generated here and bound as a parameter.

Per host: PASS (the event carries the marker's command line; with the latency from start to event), FAIL
``no_event`` (auditing is not effective), FAIL ``no_command_line`` (the event is there, its command line is
empty or absent: inclusion off or not supported), FAIL ``marker_missing`` (a command line without the
marker), or ERROR (the host could not be asked).

Command lines are redacted in the report unless asked for (``show_command_lines``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, Field

from procaudit.facts import parse_utc
from procaudit.fanout import ConnectorFactory, HostOutcome, run_on_hosts
from procaudit.remote import ScriptParams, ScriptResult, ScriptSpec
from procaudit.report.redact import redact_command_line
from procaudit.transport.base import Connector, HostTarget

# What the script needs beyond the poll itself: starting the marker, one last read, the JSON document.
_DEADLINE_MARGIN_SECONDS: Final = 30.0
#: What the marker's command line carries before the nonce (the script and the lab's model build the same).
MARKER_PREFIX: Final = "procaudit-verify-"


def new_nonce() -> str:
    """32 lower-case hex characters."""
    return secrets.token_hex(16)


class VerifyParams(ScriptParams):
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$")
    timeout_seconds: int = Field(default=30, ge=1, le=600)
    poll_milliseconds: int = Field(default=500, ge=100, le=10000)


class MarkerEvent(ScriptResult):
    time_created: str
    record_id: int
    version: int | None = None
    new_process_name: str | None = None
    command_line: str | None = None
    """The event's CommandLine: ``None`` when the field does not exist (event version 0)."""


class VerifyResult(ScriptResult):
    nonce: str
    marker_started_at: str
    marker_process_id: str
    polls: int
    waited_milliseconds: int
    event: MarkerEvent | None = None
    command_line_has_marker: bool


TEST_PROCESS_CREATION_EVENT = ScriptSpec("Test-ProcessCreationEvent", "checks", VerifyParams, VerifyResult)


class VerifyStatus(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"


class VerifyEvent(BaseModel):
    time: datetime | None
    record_id: int
    version: int | None
    new_process_name: str | None
    command_line: str | None
    """Redacted unless the report was made with ``show_command_lines``."""


class ScomConfirmation(BaseModel):
    """Whether the canary alert of this host's marker reached SCOM (``verify --scom``)."""

    server: str
    status: str  # PASS | FAIL | ERROR
    message: str
    waited_s: float = 0.0


class VerifyHost(BaseModel):
    host: str
    address: str
    groups: list[str] = []
    status: VerifyStatus
    reason: str
    """``logged``, ``no_event``, ``no_command_line``, ``marker_missing``, or the error kind (``unreachable`` ...)."""
    detail: str
    latency_ms: float | None = None
    """Marker start to the event's TimeCreated (host clock), for PASS and ``no_command_line``."""
    waited_ms: int | None = None
    polls: int | None = None
    marker_process_id: str | None = None
    nonce: str | None = None
    """The marker's nonce: what the SCOM canary alert carries (``verify --scom``)."""
    scom: ScomConfirmation | None = None
    event: VerifyEvent | None = None
    lab: bool = False


class VerifySummary(BaseModel):
    total: int
    passed: int
    failed: int
    error: int
    by_reason: dict[str, int]
    text: str


class VerifyReport(BaseModel):
    schema_: str = Field(default="procaudit.verify/1", alias="schema")
    generated_at: datetime
    lab: bool
    command_lines_shown: bool
    timeout_seconds: int
    hosts: list[VerifyHost]
    summary: VerifySummary
    interrupted: bool = False

    model_config = {"populate_by_name": True}

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True)


def judge(result: VerifyResult) -> tuple[VerifyStatus, str, str, float | None]:
    """(status, reason, detail, latency in ms) for one host's script result."""
    event = result.event
    if event is None:
        return (
            VerifyStatus.FAIL,
            "no_event",
            f"no 4688 for the marker within {result.waited_milliseconds / 1000:.0f} s ({result.polls} reads): "
            "process creation auditing is not effective",
            None,
        )
    started = parse_utc(result.marker_started_at)
    logged = parse_utc(event.time_created)
    latency = max(0.0, (logged - started).total_seconds() * 1000) if started and logged else None
    if result.command_line_has_marker:
        shown = f"{latency:.0f} ms" if latency is not None else "unknown latency"
        return VerifyStatus.PASS, "logged", f"4688 with the marker's command line logged ({shown})", latency
    if not (event.command_line or "").strip():
        what = (
            "has no CommandLine field (event version 0)" if event.command_line is None else "has an empty CommandLine"
        )
        return (
            VerifyStatus.FAIL,
            "no_command_line",
            f"the marker's 4688 (record {event.record_id}) {what}: command-line inclusion is off or unsupported",
            latency,
        )
    return (
        VerifyStatus.FAIL,
        "marker_missing",
        f"the marker's 4688 (record {event.record_id}) has a command line without the marker",
        latency,
    )


def _verify_one(timeout_seconds: int, nonce_factory: Callable[[], str]) -> Callable[[Connector], VerifyResult]:
    def job(connector: Connector) -> VerifyResult:
        params = VerifyParams(nonce=nonce_factory(), timeout_seconds=timeout_seconds)
        deadline = max(connector.target.options.script_timeout, timeout_seconds + _DEADLINE_MARGIN_SECONDS)
        return connector.run(TEST_PROCESS_CREATION_EVENT, params, timeout=deadline)

    return job


def _host(outcome: HostOutcome[VerifyResult], show_command_lines: bool) -> VerifyHost:
    target = outcome.target
    host = VerifyHost(
        host=target.name,
        address=target.address,
        groups=list(target.var("groups", ())),
        lab=target.is_lab,
        status=VerifyStatus.ERROR,
        reason="internal",
        detail="",
    )
    if outcome.value is None:
        error = outcome.error
        kind = error.kind if error is not None else "internal"
        return host.model_copy(update={"reason": kind, "detail": str(error)})
    result = outcome.value
    status, reason, detail, latency = judge(result)
    event = None
    if result.event is not None:
        raw = result.event.command_line
        event = VerifyEvent(
            time=parse_utc(result.event.time_created),
            record_id=result.event.record_id,
            version=result.event.version,
            new_process_name=result.event.new_process_name,
            command_line=raw if show_command_lines or raw is None else redact_command_line(raw),
        )
    return host.model_copy(
        update={
            "status": status,
            "reason": reason,
            "detail": detail,
            "latency_ms": round(latency, 1) if latency is not None else None,
            "waited_ms": result.waited_milliseconds,
            "polls": result.polls,
            "marker_process_id": result.marker_process_id,
            "nonce": result.nonce,
            "event": event,
        }
    )


def summarize(hosts: list[VerifyHost]) -> VerifySummary:
    by_reason: dict[str, int] = {}
    for host in hosts:
        if host.status != VerifyStatus.PASS:
            by_reason[host.reason] = by_reason.get(host.reason, 0) + 1
    passed = sum(1 for h in hosts if h.status == VerifyStatus.PASS)
    failed = sum(1 for h in hosts if h.status == VerifyStatus.FAIL)
    errors = sum(1 for h in hosts if h.status == VerifyStatus.ERROR)
    parts = [f"{passed} of {len(hosts)} hosts log 4688 with the command line"]
    parts += [f"{n} {reason.replace('_', ' ')}" for reason, n in sorted(by_reason.items(), key=lambda kv: -kv[1])]
    return VerifySummary(
        total=len(hosts), passed=passed, failed=failed, error=errors, by_reason=by_reason, text="; ".join(parts)
    )


def verify(
    targets: list[HostTarget],
    connect: ConnectorFactory,
    *,
    timeout_seconds: int = 30,
    show_command_lines: bool = False,
    workers: int = 32,
    on_done: Callable[[HostOutcome[VerifyResult]], None] | None = None,
    nonce_factory: Callable[[], str] = new_nonce,
) -> VerifyReport:
    """Run the marker on every host and judge what the Security log recorded."""
    result = run_on_hosts(
        targets, _verify_one(timeout_seconds, nonce_factory), connect, workers=workers, on_done=on_done
    )
    hosts = [_host(o, show_command_lines) for o in result.outcomes]
    return VerifyReport(
        generated_at=datetime.now(UTC),
        lab=any(h.lab for h in hosts),
        command_lines_shown=show_command_lines,
        timeout_seconds=timeout_seconds,
        hosts=hosts,
        summary=summarize(hosts),
        interrupted=result.interrupted,
    )


def exit_code(report: VerifyReport) -> int:
    """0 all PASS, 1 any FAIL or canary alert missing in SCOM, 3 any ERROR (host problems dominate)."""
    scom = [h.scom for h in report.hosts if h.scom is not None]
    if report.summary.error or any(c.status == "ERROR" for c in scom):
        return 3
    return 1 if report.summary.failed or any(c.status != "PASS" for c in scom) else 0


#: How far the host's clock (the event time) may run ahead of the management server's (the alert time).
SCOM_CLOCK_SKEW: Final = timedelta(minutes=5)


def _marker_started(host: VerifyHost, report: VerifyReport) -> datetime:
    """When the canary alert can first have been raised: the marker's start (its event time less the measured
    latency; the report's time when unknown), less ``SCOM_CLOCK_SKEW``."""
    started = report.generated_at
    if host.event is not None and host.event.time is not None:
        started = host.event.time - timedelta(milliseconds=host.latency_ms or 0)
    return started - SCOM_CLOCK_SKEW


def confirm_in_scom(
    report: VerifyReport,
    server: Connector,
    *,
    timeout_seconds: float = 300.0,
    interval_seconds: float = 15.0,
) -> VerifyReport:
    """Wait on the SCOM management server for the canary alert of every host whose marker was logged.

    All hosts share one deadline: SCOM raises each alert when the host's agent forwards the event, usually
    within a minute or two, so the first wait covers most of the others. Only alerts raised since the host's
    marker started (less a clock-skew allowance) and carrying its exact nonce (case-sensitive) count.
    """
    from procaudit.detections.scom import find_canary_alert  # the MP side, only when SCOM is asked for

    deadline = time.monotonic() + timeout_seconds
    hosts = []
    for host in report.hosts:
        if host.status != VerifyStatus.PASS or not host.nonce:
            hosts.append(host)
            continue
        remaining = max(0.0, deadline - time.monotonic())
        alert = find_canary_alert(
            server, host.nonce, since=_marker_started(host, report), timeout=remaining, interval=interval_seconds
        )
        confirmation = ScomConfirmation(
            server=server.target.name, status=alert.status, message=alert.message, waited_s=alert.waited_s
        )
        hosts.append(host.model_copy(update={"scom": confirmation}))
    asked = [h.scom for h in hosts if h.scom is not None]
    confirmed = sum(1 for c in asked if c.status == "PASS")
    text = f"{report.summary.text}; {confirmed} of {len(asked)} canary alerts confirmed in SCOM"
    summary = report.summary.model_copy(update={"text": text})
    return report.model_copy(update={"hosts": hosts, "summary": summary})
