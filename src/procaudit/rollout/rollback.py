"""``procaudit rollback``: put back exactly what the journal says procaudit changed. Idempotent.

Direct strategy, per host: read the facts; for every journalled item whose value differs from its
before-value, restore the before-value (``deploy/Set-ProcAuditSettings.ps1``; ``-1`` deletes a registry value
that did not exist before), last change first. A value that is neither the before-value nor the one procaudit
set was changed by someone since: it is left alone and reported (exit 1), never overwritten blindly.

GPO strategy: remove the selected computers from the wave groups procaudit added them to; when no deployed
host remains, also remove the links, the group permissions and the groups procaudit created and give
Authenticated Users their permission back (the GPO itself stays, unlinked - nothing applies it). Then each
host refreshes its policy: the registry extension removes the policy values the GPO set, but the advanced
audit policy and SCENoApplyLegacyAuditPolicy it applied stay in force ("tattooed"), so those are restored
to the journalled before-values directly, as for the direct strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Literal, TypeVar

from pydantic import BaseModel, Field

from procaudit.errors import TransportError
from procaudit.fanout import ConnectorFactory, run_on_hosts
from procaudit.remote import ScriptParams, ScriptResult, ScriptSpec
from procaudit.rollout.direct import apply_changes, mismatches, read_facts
from procaudit.rollout.gpo import (
    INVOKE_POLICY_REFRESH,
    SET_GPO_FILTER,
    SET_GPO_LINK,
    SET_GROUP_MEMBER,
    FilterParams,
    LinkParams,
    MemberParams,
    RefreshParams,
    RefreshResult,
    klist_failure,
    sam_of,
)
from procaudit.rollout.journal import GpoEntry, HostEntry, JournalStore, RollbackRecord, now
from procaudit.rollout.operations import CMDLINE_ITEM, Change, current_value, format_value, item_label, readable
from procaudit.transport.base import Connector, HostTarget

P = TypeVar("P", bound=ScriptParams)
R = TypeVar("R", bound=ScriptResult)

REPORT_SCHEMA: Final = "procaudit.rollback/1"
RollbackStatus = Literal["RESTORED", "NOTHING_TO_DO", "PARTIAL", "FAILED", "ERROR", "SKIPPED"]
Progress = Callable[[str], None]


class RollbackHost(BaseModel):
    host: str
    status: RollbackStatus
    wave: int
    lab: bool = False
    restored: dict[str, int | None] = {}
    skipped: dict[str, str] = {}
    notes: list[str] = []
    error: str | None = None


class RollbackReport(BaseModel):
    schema_id: str = Field(default=REPORT_SCHEMA, serialization_alias="schema")
    generated_at: datetime
    strategy: str
    journal: str
    lab: bool
    hosts: list[RollbackHost]
    domain: list[str] = []
    interrupted: bool = False
    summary: str = ""

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True) + "\n"

    @property
    def exit_code(self) -> int:
        """130 interrupted, 3 a host in ERROR or FAILED, 1 a value left alone (PARTIAL), 0 restored."""
        statuses = {h.status for h in self.hosts}
        if self.interrupted:
            return 130
        if statuses & {"ERROR", "FAILED"}:
            return 3
        return 1 if "PARTIAL" in statuses else 0


def restore_changes(
    entry: HostEntry, facts_value: Callable[[str], tuple[bool, int | None]], strategy: str
) -> tuple[list[Change], dict[str, str]]:
    """The changes that put the journalled before-values back, last change first, and the items left alone."""
    changes: list[Change] = []
    skipped: dict[str, str] = {}
    for item in reversed(list(entry.before)):
        if item.startswith("group:"):
            continue
        before = entry.before[item]
        known, current = facts_value(item)
        if not known:
            skipped[item] = "its current value could not be read"
            continue
        if current == before:
            continue
        intended = entry.intended.get(item, entry.after.get(item))
        # When a GPO stops applying, the registry extension deletes the policy values it set.
        removed_by_gpo = strategy == "gpo" and item == CMDLINE_ITEM and current is None
        if current != intended and not removed_by_gpo:
            skipped[item] = (
                f"is {format_value(item, current)}: neither the value before ({format_value(item, before)}) nor the "
                f"one procaudit set ({format_value(item, intended)}); changed since, so left alone"
            )
            continue
        changes.append(Change(item=item, before=current, after=before, reason="rollback to the journalled value"))
    return changes, skipped


class Rollback:
    def __init__(
        self,
        store: JournalStore,
        targets: dict[str, HostTarget],
        connect: ConnectorFactory,
        *,
        workers: int = 32,
        progress: Progress = lambda _m: None,
        dc: HostTarget | None = None,
    ) -> None:
        self.store = store
        self.targets = targets
        self.connect = connect
        self.workers = workers
        self.progress = progress
        self.dc = dc

    def select(self, waves: set[int] | None, hosts: set[str] | None) -> list[HostEntry]:
        chosen = []
        for entry in self.store.journal.hosts.values():
            if waves is not None and entry.wave not in waves:
                continue
            if hosts is not None and entry.host not in hosts:
                continue
            chosen.append(entry)
        return chosen

    def run(self, waves: set[int] | None = None, hosts: set[str] | None = None) -> RollbackReport:
        journal = self.store.journal
        selected = self.select(waves, hosts)
        with self.store.transition() as j:
            j.rollbacks += 1
        domain: list[str] = []
        if journal.strategy == "gpo":
            domain = self._domain(selected)
        touched = [e for e in selected if e.before or e.membership]
        untouched = [e for e in selected if not (e.before or e.membership)]
        targets = [self.targets[e.host] for e in touched if e.host in self.targets]
        missing = [e for e in touched if e.host not in self.targets]
        result = run_on_hosts(targets, self._host, self.connect, workers=self.workers)
        reports: dict[str, RollbackHost] = {}
        for outcome in result.outcomes:
            entry = journal.hosts[outcome.target.name]
            if outcome.value is not None:
                reports[entry.host] = outcome.value
            else:
                reports[entry.host] = RollbackHost(
                    host=entry.host,
                    status="ERROR",
                    wave=entry.wave,
                    lab=outcome.target.is_lab,
                    error=str(outcome.error),
                )
            self.progress(f"  {entry.host}: {reports[entry.host].status.lower().replace('_', ' ')}")
        for entry in missing:
            reports[entry.host] = RollbackHost(
                host=entry.host, status="ERROR", wave=entry.wave, error="not in the inventory: cannot connect"
            )
        for entry in untouched:
            reports[entry.host] = RollbackHost(
                host=entry.host, status="SKIPPED", wave=entry.wave, notes=["procaudit changed nothing on this host"]
            )
        with self.store.transition() as j:
            for wave in j.waves:
                entries = [j.hosts[h] for h in wave.hosts]
                if all(e.state == "rolled_back" or not (e.before or e.membership) for e in entries) and any(
                    e.state == "rolled_back" for e in entries
                ):
                    wave.state = "rolled_back"
        ordered = [reports[e.host] for e in selected]
        report = RollbackReport(
            generated_at=datetime.now(UTC),
            strategy=journal.strategy,
            journal=str(self.store.path),
            lab=journal.lab,
            hosts=ordered,
            domain=domain,
            interrupted=result.interrupted,
        )
        report.summary = _summary(report)
        return report

    # -- one host ----------------------------------------------------------------------------------------
    def _host(self, connector: Connector) -> RollbackHost:
        name = connector.target.name
        entry = self.store.journal.hosts[name]
        notes: list[str] = []
        if self.store.journal.strategy == "gpo":
            refresh: RefreshResult = connector.run(INVOKE_POLICY_REFRESH, RefreshParams())
            notes.append("policy refreshed: the GPO's registry policy values are removed where it no longer applies")
            purge = klist_failure(refresh)
            if purge:
                notes.append(purge)
        facts = read_facts(connector)

        def value(item: str) -> tuple[bool, int | None]:
            return readable(facts, item), current_value(facts, item)

        changes, skipped = restore_changes(entry, value, self.store.journal.strategy)
        problems: list[str] = []
        if changes:
            if self.store.journal.strategy == "gpo":
                notes.append(
                    "restored directly what the GPO leaves behind (advanced audit policy and "
                    "SCENoApplyLegacyAuditPolicy stay in force after a GPO stops applying)"
                )
            result = apply_changes(connector, changes)
            problems = mismatches(result, changes)
        state: Literal["restored", "partial", "failed", "nothing_to_do"]
        if problems:
            state = "failed"
        elif skipped:
            state = "partial"
        else:
            state = "restored" if changes else "nothing_to_do"
        record = RollbackRecord(
            state=state,
            restored={c.item: c.after for c in changes} if not problems else {},
            skipped=skipped,
            notes=notes + problems,
            at=now(),
        )

        def update(e: HostEntry) -> None:
            e.rollback = record
            if state != "failed":
                e.state = "rolled_back"

        self.store.host(name, update)
        status: RollbackStatus = {
            "restored": "RESTORED",
            "nothing_to_do": "NOTHING_TO_DO",
            "partial": "PARTIAL",
            "failed": "FAILED",
        }[state]  # type: ignore[assignment]
        return RollbackHost(
            host=name,
            status=status,
            wave=entry.wave,
            lab=connector.target.is_lab,
            restored=record.restored,
            skipped={item_label(k): v for k, v in skipped.items()},
            notes=record.notes,
            error="; ".join(problems) or None,
        )

    # -- the domain --------------------------------------------------------------------------------------
    def _dc_run(self, spec: ScriptSpec[P, R], params: P) -> R:
        assert self.dc is not None
        connector = self.connect(self.dc)
        try:
            return connector.run(spec, params)
        finally:
            connector.close()

    def _domain(self, selected: list[HostEntry]) -> list[str]:
        journal = self.store.journal
        gpo = journal.gpo
        if gpo is None:
            return []
        if self.dc is None:
            raise TransportError(f"the domain controller {gpo.dc} is not in the inventory")
        steps: list[str] = []
        by_group: dict[str, list[HostEntry]] = {}
        for entry in selected:
            if entry.membership:
                by_group.setdefault(entry.membership, []).append(entry)
        for group_name, entries in by_group.items():
            record = next((g for g in gpo.groups if g.name.lower() == group_name.lower()), None)
            kept = {m.lower() for m in (record.members_before or [])} if record else set()
            members = tuple(s for s in (sam_of(e.computer_name or e.host) for e in entries) if s.lower() not in kept)
            if members:
                result = self._dc_run(
                    SET_GROUP_MEMBER, MemberParams(group_name=group_name, member=members, remove=True)
                )
                if result.missing:
                    steps.append(f"{group_name} no longer exists in AD: its memberships went with it")
                else:
                    steps.append(f"removed {', '.join(members)} from {group_name}")

            def cleared(e: HostEntry) -> None:
                e.membership = None

            for entry in entries:
                self.store.host(entry.host, cleared)
        chosen = {e.host for e in selected}
        remaining = [e for e in journal.hosts.values() if e.membership and e.host not in chosen]
        if remaining or gpo.state == "rolled_back":
            if remaining:
                steps.append(f"the GPO stays linked: {len(remaining)} host(s) of other waves still apply it")
            return steps
        created_links = [lk.target for lk in gpo.links if lk.before == "absent" and not lk.removed]
        if created_links:
            self._dc_run(SET_GPO_LINK, LinkParams(gpo_name=gpo.name, target=tuple(created_links), remove=True))
            steps.append(f"removed the link(s) on {', '.join(created_links)}")
        disabled_links = [lk.target for lk in gpo.links if lk.before == "disabled" and not lk.removed]
        if disabled_links:
            self._dc_run(SET_GPO_LINK, LinkParams(gpo_name=gpo.name, target=tuple(disabled_links), disable=True))
            steps.append(f"disabled the link(s) on {', '.join(disabled_links)} again (they were disabled before)")
        everyone = _everyone_before(gpo)
        everyone_set = False
        for group in gpo.groups:
            if group.removed:
                continue
            if group.permission_granted or group.created:
                everyone_set = True
                params = FilterParams(
                    gpo_name=gpo.name,
                    group_name=group.name,
                    authenticated_users=everyone,
                    remove=True,
                    remove_group=group.created,
                )
                filtered = self._dc_run(SET_GPO_FILTER, params)
                if not filtered.group_found:
                    steps.append(
                        f"{group.name} no longer exists in AD: the GPO may keep an entry for its SID, which applies to "
                        "no one (GPMC's Delegation tab lists it as unknown; remove it there)"
                    )
                elif group.created and not filtered.group_deleted:
                    steps.append(f"removed {group.name}'s permission; the group has members now, so it stays")
                else:
                    steps.append(f"removed {group.name}'s permission" + (" and the group" if group.created else ""))
        theirs = [g for g in gpo.groups if not g.removed and not (g.permission_granted or g.created)]
        if not everyone_set and theirs:
            # No group of ours to remove, but filtering may have lowered Authenticated Users: put back only that.
            # (The grant mode would re-create a wave group deleted since, or re-grant a GpoApply taken away.)
            self._dc_run(
                SET_GPO_FILTER, FilterParams(gpo_name=gpo.name, everyone_only=True, authenticated_users=everyone)
            )
        steps.append(f"Authenticated Users: {everyone} (as before the deployment)")
        with self.store.transition() as j:
            assert j.gpo is not None
            for lk in j.gpo.links:
                lk.removed = True
            for g in j.gpo.groups:
                g.removed = True
            j.gpo.state = "rolled_back"
        steps.append(_left_in_domain(gpo))
        return steps


def _left_in_domain(gpo: GpoEntry) -> str:
    """What is true of the GPO after a rollback: procaudit's links are gone, links made by others are not.

    Links that were enabled before procaudit are never recorded (procaudit does not touch them), so a GPO that
    existed before the deployment (one with identical settings, or one taken over) may still apply through them.
    """
    if gpo.created:
        return (
            f"GPO '{gpo.name}' left in the domain without the links procaudit made (a link added by someone "
            "else since is kept); delete it with Remove-GPO if unwanted"
        )
    settings = (
        "its settings stay procaudit's (--take-over-gpo replaced them; they are not restored)"
        if gpo.took_over
        else "its settings are as they were"
    )
    return (
        f"GPO '{gpo.name}' existed before the deployment and stays in the domain: the links procaudit made are "
        f"removed or disabled again, links it had before still apply it where they did; {settings}"
    )


def _everyone_before(gpo: GpoEntry) -> Literal["GpoRead", "GpoApply", "None"]:
    """The permission a rollback gives Authenticated Users back (``None``: it had none before)."""
    before = gpo.authenticated_users_before
    if before is None:
        # Journals written before the before-state was known to be absent recorded a new GPO's GpoApply.
        return "None" if gpo.authenticated_users_known else "GpoApply"
    if before in ("GpoRead", "GpoApply"):
        return before  # type: ignore[return-value]
    # A higher level (GpoEdit ...) was replaced by GpoRead: Set-GPPermission cannot give it back through
    # this script; GpoApply is the closest level that keeps the GPO applying where it applied.
    return "GpoApply"


def _summary(report: RollbackReport) -> str:
    counts: dict[str, int] = {}
    for host in report.hosts:
        counts[host.status] = counts.get(host.status, 0) + 1
    parts = [f"{len(report.hosts)} host(s)"] + [f"{n} {s.lower().replace('_', ' ')}" for s, n in sorted(counts.items())]
    return ", ".join(parts)
