"""The GPO strategy: one domain GPO, security-filtered to per-wave AD groups, applied wave by wave.

Domain side, once (``prepare``), all over PSRP on the domain controller given with ``--dc``:

1. Read the domain (``checks/Get-ProcAuditGpoState.ps1``). A GPO of that name whose payload has the same
   settings as ours is left alone (a second deployment imports nothing); otherwise the backup
   ``procaudit.gpo.render_gpo_backup`` renders is sent (base64 parameters, SHA-256 checked on the DC) and
   imported (``deploy/Import-ProcAuditGpo.ps1``: ``Import-GPO -CreateIfNeeded``).
2. Security filtering (``deploy/Set-ProcAuditGpoFilter.ps1``): one global group per wave gets GpoApply;
   Authenticated Users keep Read only (never removed: MS16-072). Done before linking, so the GPO never
   applies to a whole OU, not even for a moment.
3. Links to the ``--ou`` targets (``deploy/Set-ProcAuditGpoLink.ps1``).

Per wave: read each host's facts and journal the before-values; add the wave's computer accounts to the
wave's group (``deploy/Set-ProcAuditGroupMember.ps1``); on each host purge the computer's Kerberos tickets
and refresh computer policy (``deploy/Invoke-ProcAuditPolicyRefresh.ps1``); read the facts again and check
that the GPO's values are the effective ones (and that the RSoP names our GPO as their source).

Every domain change is journalled before it is made (what existed before, what procaudit created), so a
rollback removes exactly what procaudit added - and a resumed run re-reads the domain and skips what is done.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from procaudit.errors import ParseError, RemoteScriptError, TransportError, UserInputError
from procaudit.facts import HostFacts, legacy_in_the_way
from procaudit.fanout import ConnectorFactory, run_on_hosts
from procaudit.gpo.payload import PAYLOAD_FILES, GpoPayload, decode_files, normalize_relative, read_payload
from procaudit.gpo.render import GpoIds, render_gpo_backup
from procaudit.gpo.settings import GpoSettings
from procaudit.remote import ScriptParams, ScriptResult, ScriptSpec
from procaudit.rollout.direct import read_facts
from procaudit.rollout.journal import (
    GpoEntry,
    GpoGroupRecord,
    GpoLinkRecord,
    HostEntry,
    HostError,
    Journal,
    JournalError,
    JournalStore,
    Strategy,
    now,
)
from procaudit.rollout.operations import (
    CMDLINE_ITEM,
    FORCE_ITEM,
    LOG_SIZE_ITEM,
    PROCESS_CREATION_ITEM,
    Change,
    HostDiff,
    Refusal,
    format_value,
    group_item,
    is_domain_gpo,
    item_label,
    os_notes,
)
from procaudit.rollout.planfile import RolloutPlan, RolloutWave
from procaudit.transport.base import Connector, HostTarget

if TYPE_CHECKING:  # deploy imports this module lazily
    from procaudit.rollout.deploy import DeployOptions, DomainStep, GpoOptions, HostReport, Progress


def _ps_list(value: Any) -> Any:
    """Windows PowerShell 5.1 sometimes writes an array as ``{"value": [...], "Count": n}``; accept both."""
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


PsList = Annotated[list[Any], BeforeValidator(_ps_list)]
GROUP_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
AUTHENTICATED_USERS_SID: Final = "S-1-5-11"
"""Authenticated Users: its name is localized ("Authentifizierte Benutzer" ...), its SID is not."""


# --- script contracts ------------------------------------------------------------------------------------


class GpoStateParams(ScriptParams):
    gpo_name: str = Field(min_length=1, max_length=255)
    group_name: tuple[str, ...] = ()
    target: tuple[str, ...] = ()
    computer: tuple[str, ...] = ()


class GpoFile(ScriptResult):
    relative_path: str
    content_base64: str


class GpoPermissionRow(ScriptResult):
    trustee: str | None = None
    trustee_sid: str | None = None
    trustee_type: str | None = None
    permission: str
    inherited: bool = False


class GpoInfo(ScriptResult):
    id: str
    display_name: str
    computer_ds_version: int | None = Field(default=None, alias="ComputerDSVersion")
    files: Annotated[list[GpoFile], BeforeValidator(_ps_list)] = Field(default_factory=list)
    permissions: Annotated[list[GpoPermissionRow], BeforeValidator(_ps_list)] = Field(default_factory=list)


class GpoLinkRow(ScriptResult):
    gpo_id: str
    display_name: str | None = None
    enabled: bool = True
    enforced: bool = False
    order: int | None = None


class TargetRow(ScriptResult):
    target: str
    exists: bool
    links: Annotated[list[GpoLinkRow], BeforeValidator(_ps_list)] = Field(default_factory=list)


class GroupRow(ScriptResult):
    name: str
    exists: bool
    distinguished_name: str | None = None
    members: Annotated[list[str], BeforeValidator(_ps_list)] = Field(default_factory=list)


class ComputerRow(ScriptResult):
    name: str
    exists: bool
    distinguished_name: str | None = None


class DomainRow(ScriptResult):
    dns_root: str
    distinguished_name: str


class GpoStateResult(ScriptResult):
    domain: DomainRow
    gpo: GpoInfo | None = None
    targets: Annotated[list[TargetRow], BeforeValidator(_ps_list)] = Field(default_factory=list)
    groups: Annotated[list[GroupRow], BeforeValidator(_ps_list)] = Field(default_factory=list)
    computers: Annotated[list[ComputerRow], BeforeValidator(_ps_list)] = Field(default_factory=list)

    def group(self, name: str) -> GroupRow | None:
        return next((g for g in self.groups if g.name.lower() == name.lower()), None)

    def link_state(self, target: str, gpo_name: str) -> str:
        row = next((t for t in self.targets if t.target.lower() == target.lower()), None)
        if row is None or not row.exists:
            return "no-target"
        link = next((lk for lk in row.links if (lk.display_name or "").lower() == gpo_name.lower()), None)
        return "absent" if link is None else "enabled" if link.enabled else "disabled"


class ImportParams(ScriptParams):
    backup_id: str = Field(pattern=r"^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$")
    target_name: str = Field(min_length=1, max_length=255)
    relative_path: tuple[str, ...]
    content_base64: tuple[str, ...]
    sha256: tuple[str, ...]


class ImportedGpo(ScriptResult):
    id: str
    display_name: str
    computer_ds_version: int | None = Field(default=None, alias="ComputerDSVersion")
    modification_time: str | None = None


class ImportResult(ScriptResult):
    existed: bool
    imported: bool
    gpo: ImportedGpo | None = None


class FilterParams(ScriptParams):
    gpo_name: str = Field(min_length=1, max_length=255)
    group_name: str | None = Field(default=None, pattern=GROUP_NAME.pattern)
    """Required unless ``everyone_only``."""
    group_path: str = ""
    authenticated_users: Literal["GpoRead", "GpoApply", "None"] = "GpoRead"
    remove: bool = False
    remove_group: bool = False
    everyone_only: bool = False
    """Set only Authenticated Users (a rollback's restore): no group is looked up, created or granted."""

    @model_validator(mode="after")
    def _one_mode(self) -> FilterParams:
        if self.everyone_only and (self.group_name or self.group_path or self.remove or self.remove_group):
            raise ValueError("everyone_only sets only Authenticated Users: no group, path, remove or remove_group")
        if not self.everyone_only and not self.group_name:
            raise ValueError("group_name is required unless everyone_only")
        return self


class FilterResult(ScriptResult):
    group_created: bool
    group_deleted: bool = False
    group_found: bool = True  # the group existed when the script ran (-EveryoneOnly looks none up: False)
    before: Annotated[list[GpoPermissionRow], BeforeValidator(_ps_list)] = Field(default_factory=list)
    after: Annotated[list[GpoPermissionRow], BeforeValidator(_ps_list)] = Field(default_factory=list)


class LinkParams(ScriptParams):
    gpo_name: str = Field(min_length=1, max_length=255)
    target: tuple[str, ...] = Field(min_length=1)
    remove: bool = False
    disable: bool = False


class LinkRow(ScriptResult):
    target: str
    before: str
    after: str


class LinkResult(ScriptResult):
    links: Annotated[list[LinkRow], BeforeValidator(_ps_list)] = Field(default_factory=list)


class MemberParams(ScriptParams):
    group_name: str = Field(pattern=GROUP_NAME.pattern)
    member: tuple[str, ...] = Field(min_length=1)
    remove: bool = False


class MemberResult(ScriptResult):
    group: str
    missing: bool = False  # -Remove only: the group does not exist (any more), so it has no members to remove
    before: PsList = Field(default_factory=list)
    changed: PsList = Field(default_factory=list)
    after: PsList = Field(default_factory=list)


class RefreshParams(ScriptParams):
    pass


class RefreshResult(ScriptResult):
    computer_name: str
    klist_exit_code: int | None = None
    klist_output: str | None = None
    gpupdate_exit_code: int | None = None
    gpupdate_output: str | None = None
    what_if: bool = False


def klist_failure(result: RefreshResult) -> str | None:
    """Why the ticket purge did not happen, or None when it did (or -WhatIf skipped it).

    The script goes on to gpupdate when klist fails (a membership change then waits for the next ticket, at
    the latest a reboot); an exit code of -1 means klist.exe did not run at all."""
    if result.klist_exit_code in (None, 0):
        return None
    detail = (result.klist_output or "").strip().splitlines()
    what = "did not run" if result.klist_exit_code == -1 else f"exited with code {result.klist_exit_code}"
    return (
        f"klist purge {what} ({detail[0] if detail else 'no output'}): a group membership change waits for "
        "the computer's next Kerberos ticket (a reboot)"
    )


GET_GPO_STATE = ScriptSpec("Get-ProcAuditGpoState", "checks", GpoStateParams, GpoStateResult)
IMPORT_GPO = ScriptSpec("Import-ProcAuditGpo", "deploy", ImportParams, ImportResult, mutating=True)
SET_GPO_FILTER = ScriptSpec("Set-ProcAuditGpoFilter", "deploy", FilterParams, FilterResult, mutating=True)
SET_GPO_LINK = ScriptSpec("Set-ProcAuditGpoLink", "deploy", LinkParams, LinkResult, mutating=True)
SET_GROUP_MEMBER = ScriptSpec("Set-ProcAuditGroupMember", "deploy", MemberParams, MemberResult, mutating=True)
INVOKE_POLICY_REFRESH = ScriptSpec(
    "Invoke-ProcAuditPolicyRefresh", "deploy", RefreshParams, RefreshResult, mutating=True
)


# --- the GPO we deploy -----------------------------------------------------------------------------------


class RenderedGpo(BaseModel):
    """The backup to import, as the import script's parameters, and the settings it carries."""

    backup_id: str
    files: dict[str, bytes]
    """Relative path in the backup folder (backslashes) -> bytes."""
    payload: GpoPayload

    def import_params(self, name: str) -> ImportParams:
        paths = sorted(self.files)
        return ImportParams(
            backup_id=self.backup_id,
            target_name=name,
            relative_path=tuple(paths),
            content_base64=tuple(_b64(self.files[p]) for p in paths),
            sha256=tuple(hashlib.sha256(self.files[p]).hexdigest() for p in paths),
        )

    @property
    def digest(self) -> str:
        text = repr(sorted(self.payload.comparable().items()))
        return hashlib.sha256(text.encode()).hexdigest()


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def render(options: GpoOptions, domain: str) -> RenderedGpo:
    """Render the GPO backup (deterministic ids for these settings) and read its payload back."""
    settings = GpoSettings(
        display_name=options.name,
        domain=domain,
        include_failure=options.include_failure,
        security_log_max_kb=options.log_size_kb,
    )
    with tempfile.TemporaryDirectory(prefix="procaudit-gpo-") as workdir:
        backup = render_gpo_backup(
            settings, Path(workdir), ids=GpoIds.derived(settings), backup_time=datetime.now(UTC).replace(microsecond=0)
        )
        files = {"\\".join(p.relative_to(backup.backup_dir).parts): p.read_bytes() for p in backup.files}
    payload = read_payload(
        {normalize_relative(k): v for k, v in files.items() if normalize_relative(k) in PAYLOAD_FILES}
    )
    return RenderedGpo(backup_id=backup.backup_id, files=files, payload=payload)


def group_name(options: GpoOptions, wave: RolloutWave) -> str:
    name = f"{options.group_prefix}-w{wave.index}"
    if not GROUP_NAME.match(name):
        raise UserInputError(
            f"--group-prefix {options.group_prefix!r} makes the group name {name!r}: use letters, digits, . _ -"
        )
    return name


def sam_of(computer_name: str) -> str:
    return computer_name.upper() + "$"


# --- the diff ---------------------------------------------------------------------------------------------


def gpo_changes(
    facts: HostFacts,
    *,
    gpo_name: str,
    payload: GpoPayload,
    group: str,
    member: bool,
) -> HostDiff:
    """What applying the GPO through ``group`` changes on this host (predicted from its facts)."""
    changes: list[Change] = []
    refused: list[Refusal] = []
    notes: list[str] = []
    if not member:
        changes.append(
            Change(
                item=group_item(group), before=0, after=1, reason=f"the computer applies GPO '{gpo_name}' through it"
            )
        )
    policy = facts.policy
    audit_value = payload.audit.get(PROCESS_CREATION_ITEM.partition(":")[2])
    if facts.audit is None:
        refused.append(
            Refusal(
                item=PROCESS_CREATION_ITEM,
                current=None,
                wanted=audit_value,
                reason="the audit policy could not be read",
            )
        )
    elif audit_value is not None:
        current = facts.audit.process_creation
        if current != audit_value:
            why = f"GPO '{gpo_name}' sets {format_value(PROCESS_CREATION_ITEM, audit_value)}"
            if current is not None and current & 2 and not audit_value & 2:
                why += "; failure auditing turns off (render the GPO with failure auditing to keep it)"
            changes.append(Change(item=PROCESS_CREATION_ITEM, before=current, after=audit_value, reason=why))
    for item, wanted in ((FORCE_ITEM, 1), (CMDLINE_ITEM, 1)):
        current = facts.registry.force_subcategory if item == FORCE_ITEM else facts.registry.cmdline_enabled
        if current != wanted:
            changes.append(Change(item=item, before=current, after=wanted, reason=f"GPO '{gpo_name}' sets it"))
    size_kb = _gpo_log_size_kb(payload)
    if size_kb is not None:
        wanted_size = size_kb * 1024
        current_size = facts.security_log.max_size if facts.security_log else None
        if current_size is not None and current_size > wanted_size:
            refused.append(
                Refusal(
                    item=LOG_SIZE_ITEM,
                    current=current_size,
                    wanted=wanted_size,
                    reason=f"the GPO sets the Security log to {format_value(LOG_SIZE_ITEM, wanted_size)}, below this "
                    f"host's {format_value(LOG_SIZE_ITEM, current_size)}: it would shrink the log. Render the GPO with "
                    "a larger --log-size, or leave this host out of the GPO deployment",
                )
            )
        elif current_size != wanted_size:
            changes.append(
                Change(item=LOG_SIZE_ITEM, before=current_size, after=wanted_size, reason=f"GPO '{gpo_name}' sets it")
            )
    if policy is not None:
        for item, source in (
            (PROCESS_CREATION_ITEM, policy.process_creation),
            (CMDLINE_ITEM, policy.cmdline),
            (FORCE_ITEM, policy.force_subcategory),
        ):
            if is_domain_gpo(source) and source is not None and (source.gpo_name or "") != gpo_name:
                notes.append(
                    f"{source.label} sets '{item_label(item)}' too: a GPO linked to the host's OU takes "
                    "precedence over one linked to the domain; the check after the refresh tells which wins"
                )
    notes.extend(os_notes(facts))
    if legacy_in_the_way(facts) is not None:
        notes.append(
            "legacy category auditing is configured: once the GPO forces subcategory settings, the subcategories "
            "keep the values the legacy policy last applied"
        )
    return HostDiff(host=facts.host, changes=tuple(changes), refused=tuple(refused), notes=tuple(notes))


def gpo_items(facts: HostFacts, payload: GpoPayload) -> dict[str, tuple[int | None, int | None]]:
    """Every host setting the GPO sets: item -> (value now, value the GPO sets).

    All of them are journalled, not only those that change: when the GPO stops applying, the registry extension
    deletes the values it set even where they equalled the host's own, so a rollback needs every before-value.
    """
    items: dict[str, tuple[int | None, int | None]] = {}
    audit_value = payload.audit.get(PROCESS_CREATION_ITEM.partition(":")[2])
    if audit_value is not None and facts.audit is not None:
        items[PROCESS_CREATION_ITEM] = (facts.audit.process_creation, audit_value)
    items[FORCE_ITEM] = (facts.registry.force_subcategory, 1)
    items[CMDLINE_ITEM] = (facts.registry.cmdline_enabled, 1)
    size_kb = _gpo_log_size_kb(payload)
    if size_kb is not None and facts.security_log is not None and facts.security_log.max_size is not None:
        items[LOG_SIZE_ITEM] = (facts.security_log.max_size, size_kb * 1024)
    return items


def _gpo_log_size_kb(payload: GpoPayload) -> int | None:
    value = next(
        (v for (k, n), v in payload.registry.items() if n.lower() == "maxsize" and "eventlog" in k.lower()), None
    )
    return value if isinstance(value, int) else None


def effective_mismatches(facts: HostFacts, diff_after: HostDiff, gpo_name: str) -> list[str]:
    """Why the GPO's values are not the effective ones after the refresh (empty: they are)."""
    problems = [
        f"{c.label} is {format_value(c.item, c.before)}, not {format_value(c.item, c.after)}"
        for c in diff_after.changes
        if not c.item.startswith("group:")
    ]
    source = facts.policy.process_creation if facts.policy else None
    if not problems and source is not None and (source.gpo_name or "") != gpo_name:
        problems.append(f"the RSoP names {source.label}, not '{gpo_name}', as the source of Process Creation")
    return problems


# --- the strategy -----------------------------------------------------------------------------------------


class GpoStrategy:
    name: Strategy = "gpo"

    def __init__(
        self,
        plan: RolloutPlan,
        connect: ConnectorFactory,
        options: DeployOptions,
        gpo: GpoOptions,
        progress: Progress,
        targets: dict[str, HostTarget],
    ) -> None:
        self.plan = plan
        self.targets = targets
        self.connect = connect
        self.options = options
        self.gpo = gpo
        self.progress = progress
        self._rendered: RenderedGpo | None = None
        self._domain: str | None = None

    # -- the DC -------------------------------------------------------------------------------------------
    def dc_run(self, spec: ScriptSpec[Any, Any], params: ScriptParams) -> Any:
        connector = self.connect(self.gpo.dc)
        try:
            return connector.run(spec, params)
        except TransportError as exc:
            raise DomainError(f"domain controller {self.gpo.dc.name}: {spec.name}: {exc}") from None
        finally:
            connector.close()

    def state(self, *, computers: tuple[str, ...] = ()) -> GpoStateResult:
        groups = tuple(group_name(self.gpo, w) for w in self.plan.waves)
        params = GpoStateParams(gpo_name=self.gpo.name, group_name=groups, target=self.gpo.ous, computer=computers)
        result: GpoStateResult = self.dc_run(GET_GPO_STATE, params)
        missing = [t.target for t in result.targets if not t.exists]
        if missing:
            raise UserInputError(f"--ou {', '.join(missing)}: no such OU in {result.domain.dns_root}")
        self._domain = result.domain.dns_root
        return result

    def rendered(self) -> RenderedGpo:
        if self._rendered is None:
            self._rendered = render(self.gpo, self._domain or "procaudit.invalid")
        return self._rendered

    def same_gpo(self, state: GpoStateResult) -> bool:
        if state.gpo is None:
            return False
        try:
            existing = read_payload(decode_files({f.relative_path: f.content_base64 for f in state.gpo.files}))
        except (ValueError, ParseError):  # bad base64, or payload files procaudit cannot read: not ours
            return False
        return existing.same_settings(self.rendered().payload)

    # -- --check ------------------------------------------------------------------------------------------
    def domain_steps(self, state: GpoStateResult) -> list[DomainStep]:
        from procaudit.rollout.deploy import DomainStep

        steps = []
        same = self.same_gpo(state)
        if same:
            what = "exists with the same settings"
        elif state.gpo is None:
            what = "created"
        elif self.gpo.take_over:
            what = "exists with other settings: --take-over-gpo replaces them (a rollback cannot restore them)"
        else:
            what = "exists with other settings: REFUSED without --take-over-gpo"
        steps.append(
            DomainStep(
                action="import",
                detail=f"GPO '{self.gpo.name}': {what} ({'; '.join(_summary(self.rendered().payload))})",
                needed=not same,
            )
        )
        for wave in self.plan.waves:
            group = group_name(self.gpo, wave)
            row = state.group(group)
            granted = state.gpo is not None and any(
                (p.trustee or "").lower() == group.lower() and p.permission == "GpoApply" for p in state.gpo.permissions
            )
            steps.append(
                DomainStep(
                    action="filter",
                    detail=f"group {group} (wave {wave.index}) "
                    + ("exists" if row and row.exists else "is created")
                    + ("; has GpoApply" if granted else "; gets GpoApply"),
                    needed=not (row and row.exists and granted),
                )
            )
        everyone = _everyone(state)
        steps.append(
            DomainStep(
                action="filter",
                detail=f"Authenticated Users: {everyone or 'GpoApply (new GPO)'} -> GpoRead (kept for MS16-072)",
                needed=everyone != "GpoRead",
            )
        )
        for target in self.gpo.ous:
            link = state.link_state(target, self.gpo.name)
            steps.append(DomainStep(action="link", detail=f"{target}: {link} -> enabled", needed=link != "enabled"))
        return steps

    def predict(self, plan: RolloutPlan, targets: list[HostTarget]) -> tuple[list[HostReport], list[DomainStep]]:
        from procaudit.rollout.deploy import predicted

        state = self.state()
        members = {g.name.lower(): {m.lower() for m in g.members} for g in state.groups}
        result = run_on_hosts(targets, read_facts, self.connect, workers=self.options.workers)

        def diff(facts: HostFacts) -> HostDiff:
            group = group_name(self.gpo, plan.wave_of(facts.host))
            member = sam_of(facts.computer_name).lower() in members.get(group.lower(), set())
            return gpo_changes(
                facts, gpo_name=self.gpo.name, payload=self.rendered().payload, group=group, member=member
            )

        return [predicted(plan, o, diff) for o in result.outcomes], self.domain_steps(state)

    # -- once, before the first wave ----------------------------------------------------------------------
    def prepare(self, store: JournalStore) -> None:
        state = self.state()
        rendered = self.rendered()
        same = self.same_gpo(state)
        check_resume(store.journal, self.gpo, store.path)
        entry = store.journal.gpo
        # Ours: the GPO this journal imported, or the one an interrupted Import-GPO created before it could report.
        ours = (
            entry is not None
            and state.gpo is not None
            and ((entry.gpo_id or "").lower() == state.gpo.id.lower() or (entry.created and entry.gpo_id is None))
        )
        foreign = state.gpo is not None and not same and not ours
        if foreign and not self.gpo.take_over:
            assert state.gpo is not None
            raise GpoTakeOverError(
                f"GPO '{self.gpo.name}' ({state.gpo.id}) already exists in {state.domain.dns_root} with other "
                "settings; importing would replace them and a rollback could not restore them. Use another "
                "--gpo-name, or pass --take-over-gpo to replace its settings anyway"
            )
        with store.transition() as journal:
            if journal.gpo is None:
                journal.gpo = GpoEntry(
                    dc=self.gpo.dc.name, name=self.gpo.name, ous=list(self.gpo.ous), group_prefix=self.gpo.group_prefix
                )
            entry = journal.gpo
            if entry.state == "rolled_back":
                # Deployed again after a full rollback: the domain as it is now is the new before-state.
                entry.authenticated_users_known = False
                entry.state = "pending"
            if not entry.authenticated_users_known:
                entry.authenticated_users_before = _everyone(state) if state.gpo is not None else "GpoApply"
                entry.authenticated_users_known = True
            entry.took_over = entry.took_over or foreign
        if same:
            assert state.gpo is not None
            self.progress(f"GPO '{self.gpo.name}' ({state.gpo.id}) is in the domain with these settings: not imported")
            with store.transition() as journal:
                assert journal.gpo is not None
                journal.gpo.gpo_id = state.gpo.id
                journal.gpo.settings_sha256 = rendered.digest
                journal.gpo.state = "imported" if journal.gpo.state == "pending" else journal.gpo.state
        else:
            with store.transition() as journal:
                assert journal.gpo is not None
                journal.gpo.created = journal.gpo.created or state.gpo is None  # intent first: never reset
            result: ImportResult = self.dc_run(IMPORT_GPO, rendered.import_params(self.gpo.name))
            if result.gpo is None:
                raise DomainError(f"Import-GPO on {self.gpo.dc.name} returned no GPO")
            self.progress(
                f"GPO '{self.gpo.name}' {'updated' if result.existed else 'created'} ({result.gpo.id}) on "
                f"{self.gpo.dc.name}"
            )
            with store.transition() as journal:
                assert journal.gpo is not None
                journal.gpo.gpo_id = result.gpo.id
                journal.gpo.imported = True
                journal.gpo.settings_sha256 = rendered.digest
                journal.gpo.state = "imported"
        for wave in self.plan.waves:
            self._filter(store, state, group_name(self.gpo, wave))
        with store.transition() as journal:
            assert journal.gpo is not None
            journal.gpo.state = "filtered" if journal.gpo.state == "imported" else journal.gpo.state
        absent = [t for t in self.gpo.ous if state.link_state(t, self.gpo.name) != "enabled"]
        if absent:
            with store.transition() as journal:
                assert journal.gpo is not None
                for target in absent:
                    now_state = state.link_state(target, self.gpo.name)
                    before: Literal["absent", "disabled"] = "absent" if now_state == "absent" else "disabled"
                    record = next((lk for lk in journal.gpo.links if lk.target.lower() == target.lower()), None)
                    if record is None:
                        record = GpoLinkRecord(target=target, created=before == "absent", before=before)
                        journal.gpo.links.append(record)
                    elif record.removed:
                        # A rollback restored this link's before-state; linking again starts a fresh record.
                        record.before, record.created, record.removed = before, before == "absent", False
                    # else: an earlier run recorded it and stopped before linking: its before-state stands
            result_links: LinkResult = self.dc_run(
                SET_GPO_LINK, LinkParams(gpo_name=self.gpo.name, target=tuple(absent))
            )
            for row in result_links.links:
                self.progress(f"GPO '{self.gpo.name}' link on {row.target}: {row.before} -> {row.after}")
        with store.transition() as journal:
            assert journal.gpo is not None
            journal.gpo.state = "linked"

    def _filter(self, store: JournalStore, state: GpoStateResult, group: str) -> None:
        row = state.group(group)
        granted = state.gpo is not None and any(
            (p.trustee or "").lower() == group.lower() and p.permission == "GpoApply" for p in state.gpo.permissions
        )
        members = list(row.members) if row is not None and row.exists else []
        if row is not None and row.exists and granted and _everyone(state) == "GpoRead":
            self._record_group(store, group, created=False, granted=False, members=members)
            return
        exists = bool(row and row.exists)
        self._record_group(store, group, created=not exists, granted=not granted, members=members)  # intent first
        params = FilterParams(gpo_name=self.gpo.name, group_name=group, group_path=self.gpo.group_path or "")
        result: FilterResult = self.dc_run(SET_GPO_FILTER, params)
        if result.group_created:
            self.progress(f"AD group {group} created; it has GpoApply on '{self.gpo.name}'")

    def _record_group(
        self, store: JournalStore, group: str, *, created: bool, granted: bool, members: list[str]
    ) -> None:
        with store.transition() as journal:
            assert journal.gpo is not None
            record = next((g for g in journal.gpo.groups if g.name.lower() == group.lower()), None)
            if record is None:
                journal.gpo.groups.append(
                    GpoGroupRecord(name=group, created=created, permission_granted=granted, members_before=members)
                )
            elif record.removed:
                # A rollback undid this group's changes: the domain as it is now is the new before-state.
                record.created, record.permission_granted, record.removed = created, granted, False
                record.members_before = members
            else:
                record.created = record.created or created
                record.permission_granted = record.permission_granted or granted
                if record.members_before is None:
                    record.members_before = members

    # -- a wave -------------------------------------------------------------------------------------------
    def run_wave(self, wave: RolloutWave, targets: list[HostTarget], store: JournalStore) -> bool:
        from procaudit.rollout.deploy import final_state, journal_diff, record_failure

        group = group_name(self.gpo, wave)
        payload = self.rendered().payload

        def read(connector: Connector) -> HostFacts:
            def reading(entry: HostEntry) -> None:
                entry.state = "reading"
                entry.attempts += 1
                entry.outcome_known = True

            store.host(connector.target.name, reading)
            return read_facts(connector)

        first = run_on_hosts(targets, read, self.connect, workers=self.options.workers)
        facts_of: dict[str, HostFacts] = {}
        for outcome in first.outcomes:
            if outcome.value is None:
                record_failure(store, outcome)
                self.progress(f"  {outcome.target.name}: FAILED ({outcome.error})")
            else:
                facts_of[outcome.target.name] = outcome.value
        if first.interrupted:
            return False
        if not facts_of:
            return True
        state = self.state(computers=tuple(sam_of(f.computer_name) for f in facts_of.values()))
        known = {c.name.lower() for c in state.computers if c.exists}
        row = state.group(group)
        members = {m.lower() for m in row.members} if row else set()
        to_add: list[str] = []
        to_refresh: list[HostTarget] = []
        for name, facts in facts_of.items():
            sam = sam_of(facts.computer_name)
            if sam.lower() not in known:
                diff = HostDiff(
                    host=name,
                    refused=(
                        Refusal(
                            item=group_item(group),
                            current=0,
                            wanted=1,
                            reason=f"no computer account {sam} in {state.domain.dns_root}",
                        ),
                    ),
                )
            else:
                diff = gpo_changes(
                    facts, gpo_name=self.gpo.name, payload=payload, group=group, member=sam.lower() in members
                )
            journal_diff(store, name, facts, diff)
            snapshot = gpo_items(facts, payload)

            def remember(entry: HostEntry, snapshot: dict[str, tuple[int | None, int | None]] = snapshot) -> None:
                entry.record_before({item: now_value for item, (now_value, _wanted) in snapshot.items()})
                for item, (_now_value, wanted) in snapshot.items():
                    entry.intended.setdefault(item, wanted)

            store.host(name, remember)
            if diff.refused:
                store.host(name, lambda e: setattr(e, "state", "refused"))
                self.progress(f"  {name}: refused ({diff.refused[0].reason})")
            elif diff.noop:
                store.host(name, lambda e, d=diff: setattr(e, "state", final_state(d)))  # type: ignore[misc]
                self.progress(f"  {name}: verified (the GPO applies already; nothing to change)")
            else:
                adding = sam.lower() not in members
                if adding:
                    to_add.append(sam)

                def applying(entry: HostEntry, adding: bool = adding) -> None:
                    entry.state = "applying"
                    # Only a membership this run adds is procaudit's to remove (not one found in place: the
                    # journal's first before-value may predate a rollback and someone adding it since).
                    if adding:
                        entry.membership = group

                store.host(name, applying)
                to_refresh.append(self.targets[name])
        if to_add:
            result: MemberResult = self.dc_run(SET_GROUP_MEMBER, MemberParams(group_name=group, member=tuple(to_add)))
            self.progress(f"AD group {group}: added {', '.join(str(m) for m in result.changed) or 'nobody new'}")
        refreshed = run_on_hosts(
            to_refresh, lambda c: self._refresh(c, store, group), self.connect, workers=self.options.workers
        )
        for done in refreshed.outcomes:
            if done.error is not None:
                record_failure(store, done)
            entry = store.journal.hosts[done.target.name]
            last = f" ({entry.errors[-1].message})" if entry.state == "failed" and entry.errors else ""
            self.progress(f"  {entry.host}: {entry.state}{last}")
        return not refreshed.interrupted

    def _refresh(self, connector: Connector, store: JournalStore, group: str) -> None:
        name = connector.target.name
        refresh: RefreshResult = connector.run(INVOKE_POLICY_REFRESH, RefreshParams())
        store.host(name, lambda e: setattr(e, "state", "applied"))
        facts = read_facts(connector)
        after = gpo_changes(facts, gpo_name=self.gpo.name, payload=self.rendered().payload, group=group, member=True)
        problems = effective_mismatches(facts, after, self.gpo.name)
        purge = klist_failure(refresh)
        if problems and purge:
            # Without the purge the computer's ticket predates its new group: the GPO waits for a reboot.
            problems.insert(0, purge)

        def checked(entry: HostEntry) -> None:
            entry.after.update({c.item: c.after for c in entry.changes})
            if problems:
                entry.errors.append(
                    HostError(
                        at=now(), state="applied", kind="verify", message="after the refresh: " + "; ".join(problems)
                    )
                )
                entry.state = "failed"
            else:
                entry.applied_items = sorted(set(entry.applied_items) | {c.item for c in entry.changes})
                entry.state = "refused" if entry.refused else "verified"

        store.host(name, checked)


class DomainError(RemoteScriptError):
    """A step on the domain controller failed; the message names the DC and the script."""


def _everyone(state: GpoStateResult) -> str | None:
    """Authenticated Users' permission on the GPO, found by SID (``None``: it has none, or there is no GPO)."""
    if state.gpo is None:
        return None
    rows = [p for p in state.gpo.permissions if (p.trustee_sid or "").upper() == AUTHENTICATED_USERS_SID]
    return next((p.permission for p in rows), None)


class GpoTakeOverError(UserInputError):
    """The GPO name is taken by a GPO procaudit did not deploy (and --take-over-gpo was not given)."""


def check_resume(journal: Journal, options: GpoOptions, path: Path) -> None:
    """A journal's GPO deployment resumes only with the same GPO name, DC, OUs and group prefix."""
    entry = journal.gpo
    if entry is None:
        return
    differences = []
    if entry.name.lower() != options.name.lower():
        differences.append(f"--gpo-name {entry.name!r}, not {options.name!r}")
    if entry.dc.lower() != options.dc.name.lower():
        differences.append(f"--dc {entry.dc}, not {options.dc.name}")
    if entry.ous and sorted(o.lower() for o in entry.ous) != sorted(o.lower() for o in options.ous):
        differences.append(f"--ou {' '.join(entry.ous)}, not {' '.join(options.ous)}")
    if entry.group_prefix is not None and entry.group_prefix != options.group_prefix:
        differences.append(f"--group-prefix {entry.group_prefix}, not {options.group_prefix}")
    if differences:
        raise JournalError(
            f"--journal {path} is the deployment of another GPO setup ({'; '.join(differences)}): resume it with "
            "the same options, or start a new journal file"
        )


def _summary(payload: GpoPayload) -> list[str]:
    parts = [f"Process Creation {format_value(PROCESS_CREATION_ITEM, v)}" for g, v in payload.audit.items()]
    parts += [f"{n} = {v}" for (_k, n), v in payload.registry.items()]
    parts += [f"{p.rsplit(chr(92), 1)[-1]} = {v}" for p, v in payload.security_registry.items()]
    return parts


__all__ = [
    "GET_GPO_STATE",
    "IMPORT_GPO",
    "INVOKE_POLICY_REFRESH",
    "SET_GPO_FILTER",
    "SET_GPO_LINK",
    "SET_GROUP_MEMBER",
    "GpoStrategy",
    "gpo_changes",
]
