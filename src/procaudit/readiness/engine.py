"""Run the readiness checks: probe each host once, evaluate the catalog, summarise per group and per blocker.

Report shape (``ReadinessReport``, JSON schema ``procaudit.check/1``; stable: fields are only ever added)::

    {"schema": "procaudit.check/1", "generated_at": ..., "lab": bool, "source": "winrm" | "evidence",
     "hosts": [{"host", "address", "groups", "status", "lab", "computer_name", "os", "collected_at",
                "blocked_by": [check ids that FAIL], "problems": {fact part: why unreadable},
                "error": {"kind", "message"} | null,
                "findings": [{"check_id", "title", "severity", "status", "detail", "evidence", "remediation"}]}],
     "summary": {"total", "ready", "not_ready", "unknown", "error", "text",
                 "groups": [{"group", "total", "ready", "not_ready", "unknown", "error"}],
                 "blockers": [{"check_id", "short", "title", "hosts"}], "errors_by_kind": {kind: n}},
     "checks": [catalog metadata], "interrupted": bool}

Host status: READY (no FAIL, every blocking check PASS, WARN or SKIPPED), NOT_READY (any FAIL), UNKNOWN (no
FAIL, but a blocking check could not tell), ERROR (the host could not be probed). Findings never carry a
command line: the probe counts events on the host and returns no event content.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from procaudit.errors import TransportError, UserInputError
from procaudit.facts import GET_PROCAUDIT_FACTS, HostFacts, ProbeParams, ProbeResult, facts_from_probe
from procaudit.fanout import ConnectorFactory, HostOutcome, run_on_hosts
from procaudit.readiness.catalog import CheckMeta, Severity, load_catalog
from procaudit.readiness.evaluators import EVALUATORS, Outcome, Status
from procaudit.transport.base import Connector, HostTarget

SCHEMA: Final = "procaudit.check/1"
EVIDENCE_FORMAT: Final = "procaudit-evidence/1"
UNGROUPED: Final = "ungrouped"


class HostStatus(StrEnum):
    READY = "READY"
    NOT_READY = "NOT_READY"
    UNKNOWN = "UNKNOWN"
    ERROR = "ERROR"


class Finding(BaseModel):
    check_id: str
    title: str
    severity: Severity
    status: Status
    detail: str
    evidence: dict[str, Any] = {}
    remediation: str | None = None
    """The catalog's remediation text, on FAIL and WARN findings."""


class HostError(BaseModel):
    kind: str
    message: str


class HostReadiness(BaseModel):
    host: str
    address: str | None = None
    groups: list[str] = []
    status: HostStatus
    lab: bool = False
    computer_name: str | None = None
    os: str | None = None
    collected_at: datetime | None = None
    blocked_by: list[str] = []
    problems: dict[str, str] = {}
    """Facts that could not be read, and why (the probe's part -> reason)."""
    error: HostError | None = None
    elapsed_ms: float | None = None
    """Time spent on the host (connect, probe), when it was probed over WinRM."""
    findings: list[Finding] = []


class GroupSummary(BaseModel):
    group: str
    total: int = 0
    ready: int = 0
    not_ready: int = 0
    unknown: int = 0
    error: int = 0


class BlockerCount(BaseModel):
    check_id: str
    short: str
    title: str
    hosts: int


class Summary(BaseModel):
    total: int
    ready: int
    not_ready: int
    unknown: int
    error: int
    groups: list[GroupSummary]
    blockers: list[BlockerCount]
    errors_by_kind: dict[str, int]
    text: str


class ReadinessReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_: str = Field(default=SCHEMA, alias="schema")
    generated_at: datetime
    lab: bool
    source: str
    hosts: list[HostReadiness]
    summary: Summary
    checks: list[CheckMeta]
    interrupted: bool = False

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2)


# --- evaluating one host ----------------------------------------------------------------------------------


def evaluate(facts: HostFacts, catalog: Iterable[CheckMeta], skip: Iterable[str] = ()) -> list[Finding]:
    """Every check of the catalog on one host's facts. A check that raises is reported as ERROR, not hidden."""
    skipped = set(skip)
    findings = []
    for meta in catalog:
        if meta.id in skipped:
            outcome = Outcome(Status.SKIPPED, "skipped on request (--skip)")
        else:
            function = EVALUATORS.get(meta.id)
            if function is None:
                outcome = Outcome(Status.ERROR, f"no evaluator for check {meta.id!r}: please report it")
            else:
                try:
                    outcome = function(facts, meta.params)
                except Exception as exc:  # a bug in one check must not hide the others
                    outcome = Outcome(Status.ERROR, f"the check failed ({type(exc).__name__}: {exc}); please report it")
        findings.append(
            Finding(
                check_id=meta.id,
                title=meta.title,
                severity=meta.severity,
                status=outcome.status,
                detail=outcome.detail,
                evidence=outcome.evidence,
                remediation=meta.remediation.text if outcome.status in (Status.FAIL, Status.WARN) else None,
            )
        )
    return findings


def host_status(findings: list[Finding], catalog: Iterable[CheckMeta]) -> HostStatus:
    blocking = {m.id for m in catalog if m.blocking}
    if any(f.status == Status.FAIL for f in findings):
        return HostStatus.NOT_READY
    if any(f.status in (Status.UNKNOWN, Status.ERROR) and f.check_id in blocking for f in findings):
        return HostStatus.UNKNOWN
    return HostStatus.READY


def readiness_for(
    facts: HostFacts,
    catalog: tuple[CheckMeta, ...],
    *,
    skip: Iterable[str] = (),
    address: str | None = None,
    groups: Iterable[str] = (),
    lab: bool = False,
) -> HostReadiness:
    findings = evaluate(facts, catalog, skip)
    os = facts.os_caption or (facts.os.version if facts.os else None)
    if facts.os is not None and facts.os_caption:
        os = f"{facts.os_caption} ({facts.os.version})"
    return HostReadiness(
        host=facts.host,
        address=address,
        groups=list(groups),
        status=host_status(findings, catalog),
        lab=lab,
        computer_name=facts.computer_name,
        os=os,
        collected_at=facts.collected_at,
        blocked_by=[f.check_id for f in findings if f.status == Status.FAIL],
        problems=dict(facts.problems),
        findings=findings,
    )


def _error_host(
    name: str, kind: str, message: str, *, address: str | None, groups: list[str] | None = None, lab: bool = False
) -> HostReadiness:
    return HostReadiness(
        host=name,
        address=address,
        groups=groups or [],
        lab=lab,
        status=HostStatus.ERROR,
        error=HostError(kind=kind, message=message),
    )


# --- the summary ----------------------------------------------------------------------------------------------


_SEVERITY_ORDER: Final = (Severity.critical, Severity.high, Severity.medium, Severity.low)


def _severity_rank(meta: CheckMeta | None) -> int:
    return _SEVERITY_ORDER.index(meta.severity) if meta is not None else len(_SEVERITY_ORDER)


def summarize(hosts: list[HostReadiness], catalog: tuple[CheckMeta, ...]) -> Summary:
    """Counts per status and group, and the blocking checks: most severe first, then by hosts failing."""
    counts = {status: sum(1 for h in hosts if h.status == status) for status in HostStatus}
    groups: dict[str, GroupSummary] = {}
    for host in hosts:
        for name in host.groups or [UNGROUPED]:
            group = groups.setdefault(name, GroupSummary(group=name))
            group.total += 1
            field = {
                HostStatus.READY: "ready",
                HostStatus.NOT_READY: "not_ready",
                HostStatus.UNKNOWN: "unknown",
                HostStatus.ERROR: "error",
            }[host.status]
            setattr(group, field, getattr(group, field) + 1)
    meta = {m.id: m for m in catalog}
    blocked: dict[str, int] = {}
    for host in hosts:
        for check_id in host.blocked_by:
            blocked[check_id] = blocked.get(check_id, 0) + 1
    order = {m.id: i for i, m in enumerate(catalog)}
    blockers = [
        BlockerCount(
            check_id=c, short=meta[c].short if c in meta else c, title=meta[c].title if c in meta else c, hosts=n
        )
        for c, n in sorted(
            blocked.items(), key=lambda kv: (_severity_rank(meta.get(kv[0])), -kv[1], order.get(kv[0], 99))
        )
    ]
    errors: dict[str, int] = {}
    for host in hosts:
        if host.error is not None:
            errors[host.error.kind] = errors.get(host.error.kind, 0) + 1
    parts = [f"{counts[HostStatus.READY]} of {len(hosts)} hosts ready"]
    for index, blocker in enumerate(blockers):
        parts.append(f"{blocker.hosts} {'blocked ' if index == 0 else ''}by {blocker.short}")
    if counts[HostStatus.UNKNOWN]:
        parts.append(f"{counts[HostStatus.UNKNOWN]} could not tell")
    for kind, n in sorted(errors.items(), key=lambda kv: -kv[1]):
        parts.append(f"{n} {kind}")
    return Summary(
        total=len(hosts),
        ready=counts[HostStatus.READY],
        not_ready=counts[HostStatus.NOT_READY],
        unknown=counts[HostStatus.UNKNOWN],
        error=counts[HostStatus.ERROR],
        groups=sorted(groups.values(), key=lambda g: g.group),
        blockers=blockers,
        errors_by_kind=errors,
        text="; ".join(parts),
    )


def _report(
    hosts: list[HostReadiness], catalog: tuple[CheckMeta, ...], source: str, interrupted: bool = False
) -> ReadinessReport:
    return ReadinessReport(
        generated_at=datetime.now(UTC),
        lab=any(h.lab for h in hosts),
        source=source,
        hosts=hosts,
        summary=summarize(hosts, catalog),
        checks=list(catalog),
        interrupted=interrupted,
    )


def exit_code(report: ReadinessReport) -> int:
    """0 every host ready (or could not tell), 1 any FAIL, 3 any host in ERROR (host problems dominate)."""
    if report.summary.error:
        return 3
    return 1 if report.summary.not_ready else 0


# --- over WinRM -------------------------------------------------------------------------------------------


def check_hosts(
    targets: list[HostTarget],
    connect: ConnectorFactory,
    *,
    params: ProbeParams | None = None,
    skip: Iterable[str] = (),
    catalog: tuple[CheckMeta, ...] | None = None,
    workers: int = 32,
    on_done: Callable[[HostOutcome[HostFacts]], None] | None = None,
) -> ReadinessReport:
    """Probe every host (one script run each) and evaluate the catalog on its facts."""
    checks = catalog or load_catalog()
    skipped = validate_skip(skip, checks)
    probe = params or ProbeParams()

    def job(connector: Connector) -> HostFacts:
        return facts_from_probe(connector.run(GET_PROCAUDIT_FACTS, probe), connector.target.name)

    result = run_on_hosts(targets, job, connect, workers=workers, on_done=on_done)
    hosts = []
    for outcome in result.outcomes:
        target = outcome.target
        address, groups, lab = target.address, list(target.var("groups", ())), target.is_lab
        if outcome.value is not None:
            host = readiness_for(outcome.value, checks, skip=skipped, address=address, groups=groups, lab=lab)
        else:
            error: TransportError | None = outcome.error
            kind, message = (error.kind, str(error)) if error else ("internal", "no result")
            host = _error_host(target.name, kind, message, address=address, groups=groups, lab=lab)
        hosts.append(host.model_copy(update={"elapsed_ms": round(outcome.elapsed * 1000, 1)}))
    return _report(hosts, checks, "winrm", result.interrupted)


def validate_skip(skip: Iterable[str], catalog: tuple[CheckMeta, ...]) -> tuple[str, ...]:
    known = {m.id for m in catalog}
    wanted = tuple(skip)
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise UserInputError(f"--skip: unknown check id(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return wanted


# --- offline evidence ---------------------------------------------------------------------------------------


class EvidenceEnvelope(BaseModel):
    """What ``Collect-ProcAudit.ps1`` writes: the probe's document and how it was produced."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    format: str = Field(alias="Format")
    probe_sha256: str | None = Field(default=None, alias="ProbeSha256")
    result: ProbeResult = Field(alias="Result")


def read_evidence(path: Path) -> HostFacts:
    """Facts from one collector file.

    Raises:
        ValueError: the file is not a collector document (message says why).
    """
    try:
        document = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name}: not a JSON document ({exc})") from exc
    if not isinstance(document, dict) or document.get("Format") != EVIDENCE_FORMAT:
        raise ValueError(f"{path.name}: not a procaudit collector file (expected Format {EVIDENCE_FORMAT!r})")
    try:
        envelope = EvidenceEnvelope.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path.name}: {where}: {first['msg']}") from exc
    facts = facts_from_probe(envelope.result)
    from procaudit.readiness.collector import probe_sha256  # here: the collector module imports this one

    if envelope.probe_sha256 and envelope.probe_sha256 != probe_sha256():
        note = (
            f"collected by another probe version (SHA-256 {envelope.probe_sha256[:12]}...); some facts may be missing"
        )
        facts = facts.model_copy(update={"problems": {**facts.problems, "probe": note}})
    return facts


def check_evidence(
    directory: Path, *, skip: Iterable[str] = (), catalog: tuple[CheckMeta, ...] | None = None
) -> ReadinessReport:
    """Evaluate the catalog on every collector file (``*.json``) in ``directory``.

    Raises:
        UserInputError: the directory does not exist or holds no ``.json`` file.
    """
    checks = catalog or load_catalog()
    skipped = validate_skip(skip, checks)
    if not directory.is_dir():
        raise UserInputError(f"--evidence {directory}: no such directory")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".json" and p.is_file())
    if not files:
        raise UserInputError(f"--evidence {directory}: no .json files (run Collect-ProcAudit.ps1 on the hosts)")
    hosts = []
    for path in files:
        try:
            facts = read_evidence(path)
        except ValueError as exc:
            hosts.append(_error_host(path.stem, "contract", str(exc), address=str(path)))
            continue
        hosts.append(readiness_for(facts, checks, skip=skipped, address=str(path)))
    return _report(hosts, checks, "evidence")
