"""``procaudit deploy``: execute a rollout plan wave by wave - predictable, reversible, honest.

For each wave, in plan order:

1. The strategy brings each host to a final state (``direct``: read facts -> compute the diff -> journal the
   before-values -> apply -> read back and check; ``gpo``: the same, with the apply being the computer's
   membership of the wave's AD group and a policy refresh on the host).
2. ``verify`` (the 4688 marker, ``procaudit.verify``) runs on the wave's hosts.
3. The soak: wait the wave's soak time (not after the last wave), then verify again (did it hold?).
4. The gate: when the wave's failures EXCEED ``max_fail_percent`` of its hosts, stop before the next wave.

Every transition is written to the journal first (``procaudit.rollout.journal``). A rerun with the same journal
skips waves that passed and hosts already verified, and re-reads every other host before touching it, so a
crash or SIGKILL at any point converges. ``predict`` (``--check``) reads facts and computes the diffs; it
changes nothing and writes no journal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, Protocol, TypeVar

from pydantic import BaseModel, Field

from procaudit.errors import InternalError, TransportError, UserInputError
from procaudit.facts import HostFacts
from procaudit.fanout import ConnectorFactory, HostOutcome, run_on_hosts
from procaudit.rollout.direct import apply_changes, mismatches, read_facts
from procaudit.rollout.journal import (
    IN_FLIGHT,
    GateDecision,
    HostEntry,
    HostError,
    HostVerify,
    Journal,
    JournalError,
    JournalStore,
    Strategy,
    WaveEntry,
    now,
)
from procaudit.rollout.operations import (
    CANNOT_LOG_CMDLINE,
    Change,
    DesiredState,
    HostDiff,
    Refusal,
    direct_changes,
)
from procaudit.rollout.planfile import RolloutPlan, RolloutWave
from procaudit.transport.base import Connector, HostTarget
from procaudit.verify import VerifyHost, VerifyReport, verify

REPORT_SCHEMA: Final = "procaudit.deploy/1"

Progress = Callable[[str], None]
T = TypeVar("T")
HostStatus = Literal["OK", "PENDING", "REFUSED", "FAILED", "ERROR", "SKIPPED", "ROLLED_BACK"]
EXIT_INTERRUPTED: Final = 130


def _quiet(_message: str) -> None:
    return None


# --- options and reports ---------------------------------------------------------------------------------


@dataclass
class DeployOptions:
    strategy: Strategy = "direct"
    force_local: bool = False
    workers: int = 32
    verify_timeout: int = 30
    """Seconds ``verify`` waits for the marker's 4688 on each host."""
    sleep: Callable[[float], None] = time.sleep
    gpo: GpoOptions | None = None


@dataclass(frozen=True)
class GpoOptions:
    """The GPO strategy's domain side: which DC runs the GroupPolicy/AD cmdlets, where to link, what to name."""

    dc: HostTarget
    ous: tuple[str, ...]
    name: str
    group_prefix: str = "procaudit-4688"
    group_path: str | None = None
    """Where new groups are created (a container or OU DN); ``None``: the domain's default (CN=Users)."""
    log_size_kb: int | None = None
    include_failure: bool = False
    take_over: bool = False
    """Replace the settings of an existing GPO of that name that procaudit did not deploy (not reversible)."""


class HostReport(BaseModel):
    host: str
    status: HostStatus
    wave: int
    state: str
    """The journal state (``verified``, ``failed`` ...) or ``predicted`` under --check."""
    lab: bool = False
    computer_name: str | None = None
    changes: list[Change] = []
    refused: list[Refusal] = []
    notes: list[str] = []
    before: dict[str, int | None] = {}
    after: dict[str, int | None] = {}
    verify: HostVerify | None = None
    error: HostError | None = None
    outcome_known: bool = True


class WaveReport(BaseModel):
    index: int
    name: str
    state: str
    hosts: list[str]
    verify_summary: str | None = None
    gate: GateDecision | None = None
    soak_seconds: float = 0.0


class DomainStep(BaseModel):
    """A change on the domain side (GPO strategy): what, and whether it is needed or was done."""

    action: str
    detail: str
    needed: bool


class DeployReport(BaseModel):
    schema_id: str = Field(default=REPORT_SCHEMA, serialization_alias="schema")
    generated_at: datetime
    strategy: Strategy
    check: bool
    lab: bool
    journal: str | None = None
    hosts: list[HostReport]
    waves: list[WaveReport]
    domain: list[DomainStep] = []
    stopped: GateDecision | None = None
    stopped_wave: int | None = None
    interrupted: bool = False
    summary: str = ""

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True) + "\n"

    @property
    def exit_code(self) -> int:
        """--check: 3 host errors, 1 pending changes or refusals, 0 nothing to do.

        Deploy: 130 interrupted (Ctrl-C; rerun with the same journal), 4 a gate stopped the rollout, 3 a host
        unreachable or lost mid-change (a transport error) or verify could not ask it, 1 a host failed (its change
        or its verify FAILed), was refused, or is rolled back (a rollback undid it and this run did not redo it),
        0 done."""
        statuses = {h.status for h in self.hosts}
        if self.check:
            if "ERROR" in statuses:
                return 3
            return 1 if statuses & {"PENDING", "REFUSED"} or any(d.needed for d in self.domain) else 0
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.stopped is not None:
            return 4
        if "ERROR" in statuses or any(
            (h.status == "FAILED" and h.error and h.error.host_problem) or (h.verify and h.verify.status == "ERROR")
            for h in self.hosts
        ):
            return 3
        if statuses & {"FAILED", "REFUSED", "ROLLED_BACK"} or any(h.verify and h.verify.failed for h in self.hosts):
            return 1
        return 0


# --- strategies ------------------------------------------------------------------------------------------


class DeployStrategy(Protocol):
    name: Strategy

    def predict(self, plan: RolloutPlan, targets: list[HostTarget]) -> tuple[list[HostReport], list[DomainStep]]:
        """The diff per host (and the domain steps) without changing anything."""
        ...

    def prepare(self, store: JournalStore) -> None:
        """Changes made once before the first wave (GPO: import, filter, link). Idempotent."""
        ...

    def run_wave(self, wave: RolloutWave, targets: list[HostTarget], store: JournalStore) -> bool:
        """Bring the wave's hosts to a final state; False when the run was interrupted (Ctrl-C)."""
        ...


def desired_for(plan: RolloutPlan, host: str) -> DesiredState:
    return DesiredState(log_max_size=plan.log_sizes.get(host))


def error_of(state: str, exc: BaseException) -> HostError:
    kind = exc.kind if isinstance(exc, TransportError) else "internal"
    return HostError(at=now(), state=state, kind=kind, message=str(exc))


def record_failure(store: JournalStore, outcome: HostOutcome[T]) -> None:
    """A host whose job raised: journal the failure with the state it was in (unless the job journaled it)."""
    error = outcome.error or InternalError("no result")
    name = outcome.target.name

    def update(entry: HostEntry) -> None:
        if entry.state in IN_FLIGHT or entry.state == "pending":
            entry.errors.append(error_of(entry.state, error))
            # Nothing was sent before 'applying': the host is as it was. From 'applying' on, a change may
            # have landed; a re-read (next run) tells.
            entry.outcome_known = entry.state not in ("applying", "applied")
            entry.state = "failed"

    store.host(name, update)


def final_state(diff: HostDiff) -> Literal["verified", "refused"]:
    return "refused" if diff.refused else "verified"


class DirectStrategy:
    """Change each host directly over PSRP (``deploy/Set-ProcAuditSettings.ps1``)."""

    name: Strategy = "direct"

    def __init__(self, plan: RolloutPlan, connect: ConnectorFactory, options: DeployOptions, progress: Progress):
        self.plan = plan
        self.connect = connect
        self.options = options
        self.progress = progress

    def diff(self, facts: HostFacts) -> HostDiff:
        return direct_changes(facts, desired_for(self.plan, facts.host), force_local=self.options.force_local)

    def predict(self, plan: RolloutPlan, targets: list[HostTarget]) -> tuple[list[HostReport], list[DomainStep]]:
        result = run_on_hosts(targets, read_facts, self.connect, workers=self.options.workers)
        return [predicted(plan, o, self.diff) for o in result.outcomes], []

    def prepare(self, store: JournalStore) -> None:
        return None

    def run_wave(self, wave: RolloutWave, targets: list[HostTarget], store: JournalStore) -> bool:
        result = run_on_hosts(targets, lambda c: self._host(c, store), self.connect, workers=self.options.workers)
        for outcome in result.outcomes:
            if outcome.error is not None:
                record_failure(store, outcome)
            self.progress(_host_line(store.journal.hosts[outcome.target.name]))
        return not result.interrupted

    def _host(self, connector: Connector, store: JournalStore) -> None:
        name = connector.target.name

        def reading(entry: HostEntry) -> None:
            entry.state = "reading"
            entry.attempts += 1
            entry.outcome_known = True

        store.host(name, reading)
        facts = read_facts(connector)
        diff = self.diff(facts)
        journal_diff(store, name, facts, diff)
        if diff.noop:
            store.host(name, lambda e: setattr(e, "state", final_state(diff)))
            return
        store.host(name, lambda e: setattr(e, "state", "applying"))
        try:
            result = apply_changes(connector, diff.changes)
        except TransportError as exc:
            if exc.kind == "cancelled":
                # Ctrl-C: no new session to find out now; a resume re-reads the host before anything else.
                _outcome_unknown(store, name, error_of("applying", exc))
            else:
                self._after_lost_apply(connector.target, store, diff, exc)
            return

        def applied(entry: HostEntry) -> None:
            entry.applied_items = sorted(set(entry.applied_items) | set(result.applied))
            entry.after.update({c.item: c.after for c in diff.changes})
            entry.state = "applied"

        store.host(name, applied)
        problems = mismatches(result, diff.changes)

        def checked(entry: HostEntry) -> None:
            if problems:
                entry.errors.append(HostError(at=now(), state="applied", kind="verify", message="; ".join(problems)))
                entry.state = "failed"
            else:
                entry.state = final_state(diff)

        store.host(name, checked)

    def _after_lost_apply(self, target: HostTarget, store: JournalStore, diff: HostDiff, exc: TransportError) -> None:
        """The apply failed or its answer was lost: re-read the host (a fresh session) to learn what happened."""
        name = target.name
        store.host(name, lambda e: e.errors.append(error_of("applying", exc)))
        connector = self.connect(target)
        try:
            facts = read_facts(connector)
        except TransportError as again:
            _outcome_unknown(store, name, error_of("applying", again))
            return
        finally:
            connector.close()
        remaining = self.diff(facts)

        def settled(entry: HostEntry) -> None:
            landed = [c for c in diff.changes if c.item not in {r.item for r in remaining.changes}]
            entry.after.update({c.item: c.after for c in landed})
            entry.applied_items = sorted(set(entry.applied_items) | {c.item for c in landed})
            entry.outcome_known = True
            if remaining.noop:
                entry.notes.append("the apply's answer was lost; re-reading the host shows every change in place")
                entry.state = final_state(remaining)
            else:
                entry.state = "failed"

        store.host(name, settled)


def journal_diff(store: JournalStore, name: str, facts: HostFacts, diff: HostDiff) -> None:
    """Write the before-values (first ones win) and the diff BEFORE anything is changed."""

    def update(entry: HostEntry) -> None:
        entry.computer_name = facts.computer_name
        entry.record_before({c.item: c.before for c in diff.changes})
        entry.intended.update({c.item: c.after for c in diff.changes})
        entry.changes = list(diff.changes)
        entry.refused = list(diff.refused)
        entry.notes = list(diff.notes)
        entry.state = "journaled"

    store.host(name, update)


def predicted(plan: RolloutPlan, outcome: HostOutcome[HostFacts], diff: Callable[[HostFacts], HostDiff]) -> HostReport:
    target = outcome.target
    wave = plan.wave_of(target.name).index
    if outcome.value is None:
        error = outcome.error or InternalError("no result")
        return HostReport(
            host=target.name,
            status="ERROR",
            wave=wave,
            state="predicted",
            lab=target.is_lab,
            error=error_of("reading", error),
        )
    result = diff(outcome.value)
    status: HostStatus = "REFUSED" if result.refused else "PENDING" if result.changes else "OK"
    return HostReport(
        host=target.name,
        status=status,
        wave=wave,
        state="predicted",
        lab=target.is_lab,
        computer_name=outcome.value.computer_name,
        changes=list(result.changes),
        refused=list(result.refused),
        notes=list(result.notes),
    )


def _host_line(entry: HostEntry) -> str:
    if entry.state == "failed":
        last = entry.errors[-1] if entry.errors else None
        return f"  {entry.host}: FAILED ({last.kind}: {last.message})" if last else f"  {entry.host}: FAILED"
    changed = len(entry.changes)
    what = f"{changed} change(s)" if changed else "nothing to change"
    refused = f", {len(entry.refused)} refused" if entry.refused else ""
    return f"  {entry.host}: {entry.state} ({what}{refused})"


# --- verify and the gate ----------------------------------------------------------------------------------


VerifyHosts = Callable[[list[HostTarget]], VerifyReport]


def marker_verify(connect: ConnectorFactory, options: DeployOptions) -> VerifyHosts:
    """``procaudit verify`` on the given hosts (the one place deploy calls it)."""

    def run(targets: list[HostTarget]) -> VerifyReport:
        return verify(targets, connect, timeout_seconds=options.verify_timeout, workers=options.workers)

    return run


def judge_verify(entry: HostEntry, result: VerifyHost) -> HostVerify:
    """A verify result in the light of what deploy did: hosts that cannot log command lines are expected to fail
    with ``no_command_line`` (the notes say why), refused hosts are not expected to pass."""
    status = str(result.status)
    cannot = any(n.startswith(CANNOT_LOG_CMDLINE) for n in entry.notes)
    if status == "FAIL" and result.reason == "no_command_line" and cannot:
        status = "EXPECTED_FAIL"
    return HostVerify(status=status, reason=result.reason, detail=result.detail, at=now())


def counts_as_failure(entry: HostEntry) -> bool:
    """For the gate: the host could not be deployed, or was deployed and does not log 4688 with command lines."""
    if entry.state in IN_FLIGHT or entry.state in ("failed", "pending"):
        return True
    if entry.state == "refused":
        return False
    return entry.verify is not None and entry.verify.failed


def gate(wave: RolloutWave, journal: Journal) -> GateDecision:
    entries = [journal.hosts[h] for h in wave.hosts]
    failed = sum(1 for e in entries if counts_as_failure(e))
    stop = wave.should_stop(failed)
    share = f"{failed} of {len(entries)} host(s) failed"
    if stop:
        reason = f"{share}, more than the {wave.max_fail_percent:g}% this wave allows: stopping before the next wave"
    else:
        reason = f"{share}, within the {wave.max_fail_percent:g}% this wave allows"
    return GateDecision(
        failed=failed, total=len(entries), max_fail_percent=wave.max_fail_percent, stop=stop, reason=reason
    )


# --- the run ---------------------------------------------------------------------------------------------


def open_journal(
    path: Path, plan: RolloutPlan, options: DeployOptions, *, inventory: Path | None, lab: bool
) -> JournalStore:
    """Load the journal at ``path`` (resume) or start a new one; a journal belongs to one plan and strategy."""
    if path.exists():
        store = JournalStore.load(path)
        journal = store.journal
        if journal.plan_sha256 != plan.digest():
            raise JournalError(
                f"--journal {path} belongs to another plan ({journal.plan_source or 'unknown file'}); resume with "
                "that plan, or start a new journal file"
            )
        if journal.strategy != options.strategy:
            raise JournalError(
                f"--journal {path} is a {journal.strategy} deployment; resume it with --strategy {journal.strategy}"
            )
        if options.gpo is not None:
            from procaudit.rollout.gpo import check_resume

            check_resume(journal, options.gpo, path)
        return store
    journal = Journal(
        plan_sha256=plan.digest(),
        plan_source=plan.source,
        strategy=options.strategy,
        inventory=str(inventory) if inventory is not None else None,
        force_local=options.force_local,
        lab=lab,
        waves=[
            WaveEntry(
                index=w.index,
                name=w.name,
                hosts=list(w.hosts),
                soak_seconds=w.soak_seconds,
                max_fail_percent=w.max_fail_percent,
            )
            for w in plan.waves
        ],
        hosts={h: HostEntry(host=h, wave=w.index) for w in plan.waves for h in w.hosts},
    )
    store = JournalStore(path, journal)
    store.save()
    return store


@dataclass
class Deployment:
    """One ``deploy`` invocation."""

    plan: RolloutPlan
    targets: dict[str, HostTarget]
    connect: ConnectorFactory
    options: DeployOptions = field(default_factory=DeployOptions)
    progress: Progress = _quiet
    verify_hosts: VerifyHosts | None = None

    def __post_init__(self) -> None:
        missing = [h for h in self.plan.hosts if h not in self.targets]
        if missing:
            raise UserInputError(
                f"the plan names host(s) the inventory does not have: {', '.join(missing[:10])}"
                + (" ..." if len(missing) > 10 else "")
            )
        if self.verify_hosts is None:
            self.verify_hosts = marker_verify(self.connect, self.options)

    def strategy(self) -> DeployStrategy:
        if self.options.strategy == "gpo":
            from procaudit.rollout.gpo import GpoStrategy

            if self.options.gpo is None:
                raise UserInputError("--strategy gpo needs --dc and at least one --ou")
            return GpoStrategy(self.plan, self.connect, self.options, self.options.gpo, self.progress, self.targets)
        return DirectStrategy(self.plan, self.connect, self.options, self.progress)

    def _targets(self, names: Iterable[str]) -> list[HostTarget]:
        return [self.targets[n] for n in names]

    # -- --check ----------------------------------------------------------------------------------------
    def predict(self) -> DeployReport:
        hosts, domain = self.strategy().predict(self.plan, self._targets(self.plan.hosts))
        hosts.sort(key=lambda h: (h.wave, h.host))
        report = DeployReport(
            generated_at=datetime.now(UTC),
            strategy=self.options.strategy,
            check=True,
            lab=any(t.is_lab for t in self.targets.values()),
            hosts=hosts,
            waves=[
                WaveReport(
                    index=w.index, name=w.name, state="predicted", hosts=list(w.hosts), soak_seconds=w.soak_seconds
                )
                for w in self.plan.waves
            ],
            domain=domain,
        )
        report.summary = check_summary(report)
        return report

    # -- the deployment ---------------------------------------------------------------------------------
    def run(self, store: JournalStore) -> DeployReport:
        strategy = self.strategy()
        with store.transition() as journal:
            journal.runs += 1
        strategy.prepare(store)
        interrupted = False
        stopped: tuple[GateDecision, int] | None = None
        last = self.plan.waves[-1].index
        for wave in self.plan.waves:
            entry = store.journal.wave(wave.index)
            settled = all(store.journal.hosts[h].state in ("verified", "refused") for h in wave.hosts)
            if entry.state == "passed" and settled:
                self.progress(f"wave {wave.index} ({wave.name}): passed in an earlier run, skipped")
                continue
            if entry.state == "passed":
                entry.state = "running"  # it passed its gate with hosts that failed: they get another go
            if entry.state in ("pending", "running", "stopped", "rolled_back"):
                self.progress(f"wave {wave.index} ({wave.name}): {len(wave.hosts)} host(s)")
                with store.transition() as journal:
                    w = journal.wave(wave.index)
                    w.state = "running"
                    w.started = w.started or now()
                todo = [h for h in wave.hosts if store.journal.hosts[h].state != "verified"]
                if not strategy.run_wave(wave, self._targets(todo), store):
                    interrupted = True
                    break
                with store.transition() as journal:
                    journal.wave(wave.index).state = "verifying"
            if store.journal.wave(wave.index).state == "verifying":
                if not self._verify(wave, store, "after the change"):
                    interrupted = True  # the wave stays 'verifying': a rerun verifies it again
                    break
                with store.transition() as journal:
                    journal.wave(wave.index).state = "soaking"
            if store.journal.wave(wave.index).state == "soaking":
                if wave.soak_seconds > 0 and wave.index != last:
                    early = gate(wave, store.journal)
                    if early.stop:
                        self.progress(f"wave {wave.index} ({wave.name}): no soak, the gate has failed already")
                    else:
                        self._soak(wave, store)
                        if not self._verify(wave, store, "after the soak"):
                            interrupted = True  # still 'soaking' (the soak is over): a rerun verifies again
                            break
                with store.transition() as journal:
                    journal.wave(wave.index).soak_ended = journal.wave(wave.index).soak_ended or now()
            decision = gate(wave, store.journal)
            with store.transition() as journal:
                w = journal.wave(wave.index)
                w.gate = decision
                w.state = "stopped" if decision.stop else "passed"
                w.finished = now()
            self.progress(f"wave {wave.index} ({wave.name}): {decision.reason}")
            if decision.stop:
                stopped = (decision, wave.index)
                break
        return self.report(store, stopped=stopped, interrupted=interrupted)

    def _verify(self, wave: RolloutWave, store: JournalStore, when: str) -> bool:
        """Verify the wave's settled hosts and journal the results; False when Ctrl-C stopped it (the hosts it
        did not reach keep their earlier verify results)."""
        names = [h for h in wave.hosts if store.journal.hosts[h].state in ("verified", "refused")]
        if not names:
            return True
        assert self.verify_hosts is not None
        run = self.verify_hosts(self._targets(names))
        results = {r.host: r for r in run.hosts if not (run.interrupted and r.reason == "cancelled")}
        if run.interrupted:
            with store.transition() as journal:
                for name, result in results.items():
                    journal.hosts[name].verify = judge_verify(journal.hosts[name], result)
            self.progress(f"wave {wave.index} ({wave.name}): verify {when} interrupted")
            return False
        with store.transition() as journal:
            passed = 0
            for name, result in results.items():
                entry = journal.hosts[name]
                entry.verify = judge_verify(entry, result)
                passed += entry.verify.status in ("PASS", "EXPECTED_FAIL")
            journal.wave(
                wave.index
            ).verify_summary = f"{when}: {passed} of {len(results)} host(s) log 4688 as expected (verify marker)"
        self.progress(f"wave {wave.index} ({wave.name}): verify {when}: {passed} of {len(results)} as expected")
        return True

    def _soak(self, wave: RolloutWave, store: JournalStore) -> None:
        with store.transition() as journal:
            w = journal.wave(wave.index)
            w.soak_started = w.soak_started or now()
            started = w.soak_started
        remaining = wave.soak_seconds - (now() - started).total_seconds()
        if remaining > 0:
            self.progress(f"wave {wave.index} ({wave.name}): soaking {remaining:.0f} s before the gate")
            self.options.sleep(remaining)

    def report(
        self, store: JournalStore, *, stopped: tuple[GateDecision, int] | None = None, interrupted: bool = False
    ) -> DeployReport:
        journal = store.journal
        hosts = [host_report(journal, name, self.targets.get(name)) for name in self.plan.hosts]
        report = DeployReport(
            generated_at=datetime.now(UTC),
            strategy=journal.strategy,
            check=False,
            lab=journal.lab,
            journal=str(store.path),
            hosts=hosts,
            waves=[
                WaveReport(
                    index=w.index,
                    name=w.name,
                    state=w.state,
                    hosts=w.hosts,
                    verify_summary=w.verify_summary,
                    gate=w.gate,
                    soak_seconds=w.soak_seconds,
                )
                for w in journal.waves
            ],
            stopped=stopped[0] if stopped else None,
            stopped_wave=stopped[1] if stopped else None,
            interrupted=interrupted,
        )
        report.summary = run_summary(report)
        return report


def host_report(journal: Journal, name: str, target: HostTarget | None) -> HostReport:
    entry = journal.hosts[name]
    wave_state = journal.wave(entry.wave).state
    status: HostStatus
    if entry.state == "verified":
        status = "OK"
    elif entry.state == "refused":
        status = "REFUSED"
    elif entry.state == "failed":
        last = entry.errors[-1] if entry.errors else None
        status = "ERROR" if last and last.host_problem and last.state in ("pending", "reading") else "FAILED"
    elif entry.state == "pending" and wave_state == "pending":
        status = "SKIPPED"
    elif entry.state == "rolled_back":
        status = "ROLLED_BACK"
    else:
        status = "FAILED"
    if status == "OK" and entry.verify is not None and entry.verify.failed:
        status = "FAILED"
    return HostReport(
        host=entry.host,
        status=status,
        wave=entry.wave,
        state=entry.state,
        lab=target.is_lab if target else False,
        computer_name=entry.computer_name,
        changes=entry.changes,
        refused=entry.refused,
        notes=entry.notes,
        before=entry.before,
        after=entry.after,
        verify=entry.verify,
        error=entry.errors[-1] if entry.errors and entry.state == "failed" else None,
        outcome_known=entry.outcome_known,
    )


def _count(report: DeployReport) -> dict[str, int]:
    counts: dict[str, int] = {}
    for host in report.hosts:
        counts[host.status] = counts.get(host.status, 0) + 1
    return counts


def check_summary(report: DeployReport) -> str:
    counts = _count(report)
    changes = sum(len(h.changes) for h in report.hosts)
    parts = [f"{len(report.hosts)} host(s): {counts.get('PENDING', 0)} to change ({changes} change(s))"]
    parts.append(f"{counts.get('OK', 0)} already as wanted")
    if counts.get("REFUSED"):
        parts.append(f"{counts['REFUSED']} refused")
    if counts.get("ERROR"):
        parts.append(f"{counts['ERROR']} unreachable or in error")
    needed = [d for d in report.domain if d.needed]
    if needed:
        parts.append(f"{len(needed)} domain step(s)")
    return "; ".join(parts) + " (--check: nothing was changed)"


def run_summary(report: DeployReport) -> str:
    counts = _count(report)
    changed = sum(1 for h in report.hosts if h.status == "OK" and h.changes)
    parts = [f"{len(report.hosts)} host(s): {counts.get('OK', 0)} OK ({changed} changed)"]
    for status in ("REFUSED", "FAILED", "ERROR", "SKIPPED", "ROLLED_BACK"):
        if counts.get(status):
            parts.append(f"{counts[status]} {status.lower()}")
    text = "; ".join(parts)
    if report.stopped is not None:
        text += f"; STOPPED at wave {report.stopped_wave}: {report.stopped.reason}"
    if report.interrupted:
        text += "; interrupted: rerun with the same --journal to continue"
    return text


def _outcome_unknown(store: JournalStore, name: str, error: HostError) -> None:
    """Whether the apply landed is unknown: the host is failed with its outcome unknown, for a resume to re-read."""

    def unknown(entry: HostEntry) -> None:
        entry.errors.append(error)
        entry.state = "failed"
        entry.outcome_known = False

    store.host(name, unknown)
