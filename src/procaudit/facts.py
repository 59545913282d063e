"""Host facts: what ``checks/Get-ProcAuditFacts.ps1`` returns, parsed into one typed ``HostFacts``.

The probe is the only script ``procaudit check`` runs on a host (one pipeline per host). It returns raw
material - Windows' own text (``auditpol /backup`` CSV, ``wevtutil gl``, a trimmed ``gpresult /x``, the
``[Event Audit]`` section of ``secedit /export``), registry values, and numbers counted on the host - in
the shape ``ProbeResult`` describes. ``facts_from_probe`` turns it into ``HostFacts`` with the parsers in
``procaudit.parsers``. The offline collector (``procaudit collector``) runs the same probe and writes the
same ``ProbeResult`` into a file, so ``check --evidence`` builds the same facts.

``HostFacts`` is a stable, documented shape (``schema_version``); readiness checks and the deploy planner
read it. Each part is ``None`` when it could not be read, and ``problems`` says why (the probe's error, or a
parse error): "could not tell" must never be mistaken for a bad value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from procaudit.errors import ParseError
from procaudit.parsers.auditpol import PROCESS_CREATION_GUID, parse_audit_csv
from procaudit.parsers.gpresult import (
    CMDLINE_POLICY_NAME,
    MAX_SIZE_POLICY_NAME,
    RETENTION_POLICY_NAME,
    GpoRef,
    PolicySources,
    parse_policy_xml,
)
from procaudit.parsers.gpresult import (
    CMDLINE_VALUE as CMDLINE_VALUE,  # re-exported: the value's name belongs with the facts that read it
)
from procaudit.parsers.osinfo import OsFacts, os_facts
from procaudit.parsers.sddl import Principal, extra_readers, readers
from procaudit.parsers.secedit import parse_security_template
from procaudit.parsers.wevtutil import parse_wevtutil_gl
from procaudit.remote import ScriptParams, ScriptResult, ScriptSpec

SCHEMA_VERSION: Final = 1

AUDIT_KEY: Final = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\Audit"
LSA_KEY: Final = r"HKLM\SYSTEM\CurrentControlSet\Control\Lsa"
FORCE_VALUE: Final = "SCENoApplyLegacyAuditPolicy"
EVENTLOG_POLICY_KEY: Final = r"HKLM\SOFTWARE\Policies\Microsoft\Windows\EventLog\Security"

# The Administrative Template policies the probe keeps from gpresult. GPMC writes their names in the host's
# language; these are the English ones, so on other locales the ADMX policy is not found (the registry
# value, read directly, still is).
DEFAULT_POLICY_NAMES: Final = (CMDLINE_POLICY_NAME, MAX_SIZE_POLICY_NAME, RETENTION_POLICY_NAME)


# --- the probe's contract ------------------------------------------------------------------------------------


class ProbeParams(ScriptParams):
    window_hours: int = Field(default=24, ge=1, le=720)
    """Count 4688 events of the last this many hours."""
    max_events: int = Field(default=2000, ge=1, le=100000)
    """Count at most this many of the newest 4688 events (bounds the probe's time on busy hosts)."""
    policy_names: tuple[str, ...] = DEFAULT_POLICY_NAMES


class ProbeOs(ScriptResult):
    caption: str | None = None
    version: str
    build_number: str | None = None
    product_type: int | None = None


class ProbeRegistryValue(ScriptResult):
    key: str
    name: str
    value: int | str | list[str] | None = None
    kind: str | None = None
    """``Microsoft.Win32.RegistryValueKind`` name (``DWord``, ``String`` ...); ``None`` when the value is absent."""


class ProbeSecurityLog(ScriptResult):
    file_size: int | None = None
    record_count: int | None = None
    maximum_size_in_bytes: int | None = None
    log_mode: str | None = None
    is_log_full: bool | None = None
    oldest_record_time: str | None = None


class ProbeMember(ScriptResult):
    sid: str | None = None
    name: str | None = None


class ProbeReaders(ScriptResult):
    method: str
    members: list[ProbeMember] = Field(default_factory=list)


class ProbeEvents(ScriptResult):
    window_hours: int
    max_events: int
    sampled: int
    with_command_line: int
    newest_time: str | None = None
    oldest_time: str | None = None


class ProbeService(ScriptResult):
    state: str
    start_mode: str | None = None


class ProbeResult(ScriptResult):
    """The probe's JSON document, as Windows PowerShell 5.1 writes it."""

    computer_name: str
    collected_at: str
    ps_version: str = Field(alias="PSVersion")
    os: ProbeOs = Field(alias="OS")
    hot_fix_ids: list[str] | None = None
    audit_policy_csv: str | None = None
    security_template: str | None = None
    registry: list[ProbeRegistryValue] = Field(default_factory=list)
    security_channel: str | None = None
    security_log: ProbeSecurityLog | None = None
    event_log_readers: ProbeReaders | None = None
    events4688: ProbeEvents | None = Field(default=None, alias="Events4688")
    health_service: ProbeService | None = None
    management_groups: list[str] = Field(default_factory=list)
    gp_result_xml: str | None = None
    errors: dict[str, str] = Field(default_factory=dict)


GET_PROCAUDIT_FACTS = ScriptSpec("Get-ProcAuditFacts", "checks", ProbeParams, ProbeResult)


# --- the typed facts -----------------------------------------------------------------------------------------


class _Facts(BaseModel):
    model_config = ConfigDict(frozen=True)


class AuditPolicyFacts(_Facts):
    """The effective advanced audit policy (``auditpol /backup``): Setting Value per subcategory GUID."""

    settings: dict[str, int]
    """Upper-case braced GUID -> 0 no auditing, 1 success, 2 failure, 3 both."""
    process_creation: int | None
    """Setting Value of Process Creation ({0CCE922B-...}); ``None`` when the backup has no row for it."""

    @property
    def process_creation_success(self) -> bool | None:
        return None if self.process_creation is None else self.process_creation in (1, 3)


class LegacyAuditFacts(_Facts):
    """The legacy category policy in the local security database (``secedit /export``, ``[Event Audit]``)."""

    categories: dict[str, int]
    """``AuditProcessTracking`` -> 0 none, 1 success, 2 failure, 3 both; empty when the section is absent."""

    @property
    def process_tracking(self) -> int | None:
        return next((v for k, v in self.categories.items() if k.lower() == "auditprocesstracking"), None)


class RegistryValueFact(_Facts):
    key: str
    name: str
    value: int | str | list[str] | None
    kind: str | None


class RegistryFacts(_Facts):
    """The registry values the probe reads; ``None`` means the value does not exist."""

    values: tuple[RegistryValueFact, ...]

    def get(self, key: str, name: str) -> int | str | list[str] | None:
        for item in self.values:
            if item.key.lower() == key.lower() and item.name.lower() == name.lower():
                return item.value
        return None

    def get_int(self, key: str, name: str) -> int | None:
        value = self.get(key, name)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        return None

    @property
    def cmdline_enabled(self) -> int | None:
        """``ProcessCreationIncludeCmdLine_Enabled`` (1 includes the command line); ``None`` when absent."""
        return self.get_int(AUDIT_KEY, CMDLINE_VALUE)

    @property
    def force_subcategory(self) -> int | None:
        """``SCENoApplyLegacyAuditPolicy`` (1 = subcategory settings win); ``None`` when absent."""
        return self.get_int(LSA_KEY, FORCE_VALUE)

    @property
    def eventlog_policy_max_size_kb(self) -> int | None:
        """Security log maximum size set by policy (KB), ``None`` when no policy sets it."""
        return self.get_int(EVENTLOG_POLICY_KEY, "MaxSize")


LogMode = Literal["Circular", "AutoBackup", "Retain"]


class SecurityLogFacts(_Facts):
    """The Security log: configuration (``wevtutil gl Security``) and what it holds now."""

    max_size: int | None
    """Maximum size in bytes."""
    log_mode: LogMode | None
    """Circular: overwrite as needed; AutoBackup: archive when full; Retain: keep, drop new events when full."""
    channel_access: str | None
    """The channel ACL (SDDL)."""
    file_size: int | None
    record_count: int | None
    oldest_record: datetime | None
    is_full: bool | None


class GroupMember(_Facts):
    sid: str | None
    name: str | None


class ReaderFacts(_Facts):
    """Who can read the Security log, and so every command line in it."""

    channel_readers: tuple[Principal, ...] | None
    """Trustees the channel ACL lets read (group membership not expanded); ``None`` without the ACL."""
    extra_channel_readers: tuple[Principal, ...] | None
    """Readers beyond the Windows default ACL (SYSTEM, Administrators, Event Log Readers)."""
    event_log_readers: tuple[GroupMember, ...] | None
    """Members of BUILTIN\\Event Log Readers (S-1-5-32-573); ``None`` when they could not be listed."""
    members_method: str | None = None


class EventFacts(_Facts):
    """Recent 4688 events, counted on the host (no event content crosses the wire)."""

    window_hours: int
    max_events: int
    sampled: int
    """4688 events counted: all of the window's, or the newest ``max_events`` of them."""
    with_command_line: int
    newest: datetime | None
    oldest: datetime | None

    @property
    def truncated(self) -> bool:
        """The window holds more events than were counted (only the newest ``max_events`` were)."""
        return self.sampled >= self.max_events

    @property
    def command_line_share(self) -> float | None:
        return self.with_command_line / self.sampled if self.sampled else None


class ScomFacts(_Facts):
    installed: bool
    state: str | None
    """Win32_Service State (``Running``, ``Stopped`` ...); ``None`` when not installed."""
    start_mode: str | None
    management_groups: tuple[str, ...]


class SourcedSetting(_Facts):
    """A setting a GPO delivers: the winning GPO and its value."""

    value: int | None
    """The value the GPO sets (audit Setting Value, 1/0 for on/off); ``None`` when the report does not say."""
    gpo_id: str | None
    gpo_name: str | None
    precedence: int | None
    via: str
    """Where in the RSoP it was found: ``audit_setting``, ``registry_value``, ``admx_policy``, ``legacy_audit``,
    ``security_option``."""

    @property
    def label(self) -> str:
        return f"'{self.gpo_name}'" if self.gpo_name else (self.gpo_id or "an unnamed GPO")

    @property
    def where(self) -> str:
        """``the local Group Policy`` or ``GPO 'name'``, for messages."""
        return "the local Group Policy" if self.gpo_id == "LocalGPO" else f"GPO {self.label}"


class PolicySourceFacts(_Facts):
    """Which GPO (from the RSoP, ``gpresult /scope computer /x``) sets each setting, if any."""

    gpo_names: dict[str, str]
    process_creation: SourcedSetting | None
    cmdline: SourcedSetting | None
    legacy_process_tracking: SourcedSetting | None
    force_subcategory: SourcedSetting | None
    security_log_max_size_kb: SourcedSetting | None
    repaired: bool = False


class HostFacts(_Facts):
    """Everything the probe learned about one host. Parts are ``None`` when unknown; ``problems`` says why."""

    schema_version: int = SCHEMA_VERSION
    host: str
    """The inventory name (or, for collected evidence, the computer name)."""
    computer_name: str
    collected_at: datetime
    """The host's clock (UTC) when the probe ran; ages (oldest record, newest event) are measured from it."""
    ps_version: str
    os_caption: str | None
    os: OsFacts | None
    audit: AuditPolicyFacts | None
    legacy: LegacyAuditFacts | None
    registry: RegistryFacts
    security_log: SecurityLogFacts | None
    readers: ReaderFacts | None
    events_4688: EventFacts | None
    scom: ScomFacts
    policy: PolicySourceFacts | None
    problems: dict[str, str] = {}
    """Fact part (a field name above, or ``hotfixes``) -> why it is missing or incomplete."""


# --- raw material -> facts -----------------------------------------------------------------------------------

# The probe's section names (its Errors keys) -> the HostFacts part each one feeds.
_SECTIONS: Final = {
    "AuditPolicy": "audit",
    "SecurityTemplate": "legacy",
    "SecurityChannel": "security_log",
    "SecurityLog": "security_log",
    "EventLogReaders": "readers",
    "HotFixes": "hotfixes",
    "Events4688": "events_4688",
    "GpResult": "policy",
}


_T = TypeVar("_T")


def parse_utc(text: str | None) -> datetime | None:
    """An ISO 8601 time as the scripts write it; one without an offset is UTC. ``None`` when absent or unreadable."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def facts_from_probe(result: ProbeResult, host: str | None = None) -> HostFacts:
    """Parse the probe's raw material into ``HostFacts``. Never raises for bad raw material: a part that
    cannot be parsed is ``None`` and its parse error is in ``problems``."""
    problems: dict[str, str] = {}
    for section, message in result.errors.items():
        part = _SECTIONS.get(section, section)
        problems[part] = f"{problems[part]}; {message}" if part in problems else message

    def attempt(part: str, fn: Callable[[], _T]) -> _T | None:
        try:
            return fn()
        except ParseError as exc:
            problems[part] = f"{problems[part]}; {exc}" if part in problems else str(exc)
            return None

    os = attempt(
        "os",
        lambda: os_facts(
            result.os.version,
            build_number=result.os.build_number,
            product_type=result.os.product_type,
            hotfix_ids=result.hot_fix_ids,
        ),
    )
    csv_text, template_text, rsop_text = result.audit_policy_csv, result.security_template, result.gp_result_xml
    audit = attempt("audit", lambda: _audit(csv_text)) if csv_text is not None else None
    legacy = attempt("legacy", lambda: _legacy(template_text)) if template_text is not None else None
    registry = RegistryFacts(
        values=tuple(RegistryValueFact(key=v.key, name=v.name, value=v.value, kind=v.kind) for v in result.registry)
    )
    security_log = attempt("security_log", lambda: _security_log(result.security_channel, result.security_log))
    readers_facts = attempt("readers", lambda: _readers(result.security_channel, result.event_log_readers))
    events = _events(result.events4688)
    policy = attempt("policy", lambda: _policy(rsop_text)) if rsop_text is not None else None
    scom = ScomFacts(
        installed=result.health_service is not None,
        state=result.health_service.state if result.health_service else None,
        start_mode=result.health_service.start_mode if result.health_service else None,
        management_groups=tuple(result.management_groups),
    )
    collected = parse_utc(result.collected_at)
    if collected is None:
        problems["collected_at"] = f"CollectedAt {result.collected_at!r} is not an ISO 8601 time"
    return HostFacts(
        host=host or result.computer_name,
        computer_name=result.computer_name,
        collected_at=collected or datetime.now(UTC),
        ps_version=result.ps_version,
        os_caption=result.os.caption,
        os=os,
        audit=audit,
        legacy=legacy,
        registry=registry,
        security_log=security_log,
        readers=readers_facts,
        events_4688=events,
        scom=scom,
        policy=policy,
        problems=problems,
    )


def _audit(text: str) -> AuditPolicyFacts:
    parsed = parse_audit_csv(text, source="auditpol /backup")
    settings = {guid: row.setting_value for guid, row in parsed.subcategories.items()}
    return AuditPolicyFacts(settings=settings, process_creation=settings.get(PROCESS_CREATION_GUID))


def _legacy(text: str) -> LegacyAuditFacts:
    template = parse_security_template(text, source="secedit /export [Event Audit]")
    return LegacyAuditFacts(categories=template.event_audit())


_MODES: Final[dict[str, LogMode]] = {"circular": "Circular", "autobackup": "AutoBackup", "retain": "Retain"}


def _security_log(channel_text: str | None, stats: ProbeSecurityLog | None) -> SecurityLogFacts | None:
    if channel_text is None and stats is None:
        return None
    channel = parse_wevtutil_gl(channel_text, source="wevtutil gl Security") if channel_text is not None else None
    max_size = channel.max_size if channel and channel.max_size is not None else None
    mode = channel.log_mode if channel else None
    if stats is not None:
        max_size = max_size if max_size is not None else stats.maximum_size_in_bytes
        mode = mode or _MODES.get((stats.log_mode or "").lower())
    return SecurityLogFacts(
        max_size=max_size,
        log_mode=mode,
        channel_access=channel.channel_access if channel else None,
        file_size=stats.file_size if stats else None,
        record_count=stats.record_count if stats else None,
        oldest_record=parse_utc(stats.oldest_record_time) if stats else None,
        is_full=stats.is_log_full if stats else None,
    )


def _readers(channel_text: str | None, members: ProbeReaders | None) -> ReaderFacts | None:
    channel = parse_wevtutil_gl(channel_text, source="wevtutil gl Security") if channel_text is not None else None
    access = channel.channel_access if channel else None
    if access is None and members is None:
        return None
    return ReaderFacts(
        channel_readers=tuple(readers(access)) if access else None,
        extra_channel_readers=tuple(extra_readers(access)) if access else None,
        event_log_readers=tuple(GroupMember(sid=m.sid, name=m.name) for m in members.members) if members else None,
        members_method=members.method if members else None,
    )


def _events(raw: ProbeEvents | None) -> EventFacts | None:
    if raw is None:
        return None
    return EventFacts(
        window_hours=raw.window_hours,
        max_events=raw.max_events,
        sampled=raw.sampled,
        with_command_line=min(raw.with_command_line, raw.sampled),
        newest=parse_utc(raw.newest_time),
        oldest=parse_utc(raw.oldest_time),
    )


def _sourced(gpo: GpoRef, names: dict[str, str], value: int | None, precedence: int | None, via: str) -> SourcedSetting:
    name = gpo.name or (names.get(gpo.identifier) if gpo.identifier else None)
    if gpo.identifier == "LocalGPO" and not name:
        name = "Local Group Policy"
    return SourcedSetting(value=value, gpo_id=gpo.identifier, gpo_name=name, precedence=precedence, via=via)


def _policy(text: str) -> PolicySourceFacts:
    sources: PolicySources = parse_policy_xml(text, source="gpresult /x (trimmed)")
    names = sources.gpo_names
    pc = sources.process_creation()
    cmd = sources.cmdline_setting()
    legacy = sources.legacy_process_tracking()
    force = sources.force_subcategory()
    size = sources.security_log_max_size()
    return PolicySourceFacts(
        gpo_names=names,
        process_creation=_sourced(pc.gpo, names, pc.setting_value, pc.precedence, "audit_setting") if pc else None,
        cmdline=(
            _sourced(cmd.gpo, names, None if cmd.enabled is None else int(cmd.enabled), cmd.precedence, cmd.via)
            if cmd
            else None
        ),
        legacy_process_tracking=(
            _sourced(legacy.gpo, names, legacy.setting_value, legacy.precedence, "legacy_audit") if legacy else None
        ),
        force_subcategory=(
            _sourced(
                force.gpo,
                names,
                None if force.enabled is None else int(force.enabled),
                force.precedence,
                "security_option",
            )
            if force
            else None
        ),
        security_log_max_size_kb=(
            _sourced(size.gpo, names, size.max_size_kb, size.precedence, size.via) if size else None
        ),
        repaired=sources.repaired,
    )


# --- legacy category policy ---------------------------------------------------------------------------------


def force_in_effect(facts: HostFacts) -> bool:
    """Whether subcategory settings win over legacy category policy on this host (the force flag is in effect).

    An absent SCENoApplyLegacyAuditPolicy counts as its effective default, Enabled on Vista / Server 2008 and later,
    on DCs, member servers and clients (../shared/reference/gpo_audit.md §3.2, after Microsoft's reference page of
    "Audit: Force audit policy subcategory settings ..."). Checks and deploy both decide by this one rule.
    """
    value = facts.registry.force_subcategory
    return value == 1 or value is None


class LegacyPolicy(BaseModel):
    """A legacy "Audit process tracking" category policy that overwrites Process Creation at each refresh."""

    where: str
    """``GPO 'name'`` or ``the local security policy``."""
    value: int | None
    """The category's setting: 0 none, 1 success, 2 failure, 3 both (``None``: the RSoP does not say)."""
    gpo: SourcedSetting | None = None


def legacy_in_the_way(facts: HostFacts) -> LegacyPolicy | None:
    """The legacy category policy that applies over Process Creation, or ``None`` (the force flag is in effect,
    or no legacy policy defines "Audit process tracking").

    A GPO that defines the category (the RSoP names it) is in the way whatever its value: the category value
    replaces the subcategory's at every refresh. Without one, a non-zero category in the local security policy
    (``secedit /export``) is in the way; a zero there is what every host lists for an undefined category.
    """
    if force_in_effect(facts):
        return None
    gpo = facts.policy.legacy_process_tracking if facts.policy else None
    if gpo is not None:
        return LegacyPolicy(where=gpo.where, value=gpo.value, gpo=gpo)
    local = facts.legacy.process_tracking if facts.legacy else None
    if local:
        return LegacyPolicy(where="the local security policy", value=local)
    return None
