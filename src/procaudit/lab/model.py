"""A model of one Windows host: the state procaudit reads and changes, with Windows' own rules applied.

What is modelled (facts from ../shared/reference/gpo_audit.md and DESIGN.md):

* Audit policy as LSA holds it (``auditpol /backup``), the advanced policy delivered by local or domain
  policy (audit.csv), the legacy category policy (``[Event Audit]``) and ``SCENoApplyLegacyAuditPolicy``.
  At each policy refresh the advanced policy is applied, then - where the force flag is 0 - the legacy
  category setting overwrites every subcategory of its category. An absent flag counts as Enabled, its
  effective default since Vista / Server 2008 (gpo_audit.md §3.2; UNVERIFIED on a real host, see the live case).
* The registry values we read and write, and which of them a domain GPO owns (a refresh puts them back).
* The Security log: size, retention, channel ACL, and a generator of process-creation activity.
* OS identity and hotfixes, services (SCOM HealthService, Sysmon), Event Log Readers membership.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from procaudit.facts import AUDIT_KEY as AUDIT_KEY
from procaudit.facts import CMDLINE_VALUE as CMDLINE_VALUE
from procaudit.facts import EVENTLOG_POLICY_KEY as EVENTLOG_POLICY_KEY
from procaudit.facts import FORCE_VALUE as FORCE_VALUE
from procaudit.facts import LSA_KEY as LSA_KEY
from procaudit.parsers.auditpol import PROCESS_CREATION_GUID, legacy_category_subcategories

PROCESS_CREATION = PROCESS_CREATION_GUID  # the model's short name for the subcategory it keys policy on

# The registry keys and values the model keeps are the names procaudit.facts reads (imported above; "Specify
# the maximum log file size (KB)" of the Event Log ADMX is EVENTLOG_POLICY_KEY's MaxSize).

DEFAULT_SECURITY_SDDL = "O:BAG:SYD:(A;;0xf0005;;;SY)(A;;0x5;;;BA)(A;;0x1;;;S-1-5-32-573)"

Role = Literal["workstation", "member", "dc", "rds", "scom"]


@dataclass
class OsIdentity:
    computer_name: str
    caption: str
    version: str  # e.g. 10.0.17763
    build: str
    product_type: int  # 1 workstation, 2 domain controller, 3 server
    ps_version: str = "5.1.17763.1"
    hotfixes: list[str] = field(default_factory=list)
    domain: str = "corp.example"
    locale: str = "en-US"


@dataclass
class GpoSetting:
    """A setting a domain GPO delivers: which GPO, and the value it wins with."""

    gpo_guid: str
    gpo_name: str
    value: int


@dataclass
class PolicyState:
    """Configured policy, by source. ``lsa`` is the effective audit policy (what auditpol reports)."""

    lsa: dict[str, int] = field(default_factory=dict)
    local_advanced: dict[str, int] = field(default_factory=dict)  # local GPO audit.csv
    domain_advanced: dict[str, GpoSetting] = field(default_factory=dict)  # winning domain GPO audit.csv rows
    legacy: dict[str, int] = field(default_factory=dict)  # [Event Audit] category -> 0..3
    legacy_gpo: dict[str, GpoSetting] = field(default_factory=dict)  # legacy settings that come from a GPO
    domain_registry: dict[tuple[str, str], GpoSetting] = field(default_factory=dict)  # (key, value) -> GPO


@dataclass
class SecurityLog:
    max_size: int = 20 * 1024 * 1024
    retention: Literal["overwrite", "archive", "retain"] = "overwrite"
    channel_sddl: str = DEFAULT_SECURITY_SDDL
    enabled: bool = True
    record_size: int = 800  # bytes per 4688 record on disk (measured median 0.73-0.87 KB)
    other_events_per_day: int = 20000  # logon/logoff and the rest of the Security traffic
    # How many records a filtered EventLogReader scans per second on this host (None: the lab never reaches a
    # time budget). Scanning costs every record of the window, matching or not.
    read_records_per_second: float | None = None


@dataclass
class ActivityProfile:
    """How many processes this host starts: a daily rhythm around ``per_day`` (ground truth for estimates)."""

    per_day: int
    seed: int = 0


@dataclass
class Services:
    scom_agent: Literal["running", "stopped", "absent"] = "running"
    scom_management_groups: list[str] = field(default_factory=lambda: ["CORP-MG"])
    sysmon: bool = False


@dataclass
class SysmonLog:
    """``Microsoft-Windows-Sysmon/Operational`` on a host where Sysmon runs (``services.sysmon``).

    Event 1 (process create) is logged for every start (a configuration without ProcessCreate exclusions);
    the rest of the channel's traffic (network, image loads, ...) is a flat rate. Sizes are assumptions.
    """

    max_size: int = 64 * 1024 * 1024  # Sysmon's installer default for the channel
    record_size: int = 1400  # bytes per event 1 on disk: hashes and both command lines
    other_events_per_day: int = 4000
    other_record_size: int = 900
    since: datetime | None = None  # installed at; None = long before any window an estimate asks for


@dataclass
class RecordedEvent:
    """An event the lab appended explicitly (e.g. the verify marker's 4688)."""

    event_id: int
    time: datetime
    record_id: int
    fields: dict[str, str]


@dataclass
class InstalledMp:
    """A management pack installed in a management group (what Get-SCOMManagementPack shows)."""

    id: str
    version: str
    sealed: bool
    display_name: str
    imported: datetime
    xml: str | None = None  # an unsealed pack's XML as imported; None for the sealed libraries modelled
    first_imported: datetime | None = None  # when this id was first imported (kept across upgrades)


@dataclass
class ScomServer:
    """A SCOM management server: its management group and the packs installed there.

    Alerts are not stored: the lab computes them from the installed packs' rules and the 4688 events that agents
    reporting to this group logged after the pack was imported (``procaudit.lab.handlers.scom``).
    """

    management_group: str = "CORP-MG"
    management_packs: dict[str, InstalledMp] = field(default_factory=dict)
    module_installed: bool = True  # the OperationsManager PowerShell module


@dataclass
class LabHost:
    """One modelled Windows host. All mutation goes through methods that hold ``lock``."""

    name: str
    profile: str
    role: Role
    os: OsIdentity
    policy: PolicyState
    registry: dict[str, dict[str, int | str]]
    security_log: SecurityLog
    activity: ActivityProfile
    services: Services
    event_log_readers: list[tuple[str, str]] = field(default_factory=list)  # (SID, name)
    # Since when the Security log holds each event id (the history an estimate can read); absent = never.
    logging_since: dict[int, datetime] = field(default_factory=dict)
    # When 4688 (and its command line) was effective: see procaudit.lab.eventlog.timeline.
    audit_timeline: list[Any] = field(default_factory=list)
    events: list[RecordedEvent] = field(default_factory=list)
    sysmon_log: SysmonLog = field(default_factory=SysmonLog)
    scom: ScomServer | None = None  # set on a SCOM management server
    files: dict[str, bytes] = field(default_factory=dict)  # files procaudit's scripts wrote (Windows path -> bytes)
    # System32 programs that cannot start here (AppLocker/WDAC block, file missing): `& program` throws before
    # the program runs and sets no exit code (e.g. {'gpupdate.exe'}). Modelled for the policy-refresh script's
    # programs (klist, gpupdate) only; the facts and settings handlers still run auditpol, secedit and wevtutil.
    unlaunchable: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- policy engine ---------------------------------------------------------------------------------
    def refresh_policy(self) -> None:
        """What a Group Policy refresh does to the settings procaudit cares about."""
        with self.lock:
            for guid, value in self.policy.local_advanced.items():
                self.policy.lsa[guid] = value
            for guid, setting in self.policy.domain_advanced.items():
                self.policy.lsa[guid] = setting.value
            for (key, value_name), setting in self.policy.domain_registry.items():
                self.registry.setdefault(key, {})[value_name] = setting.value
            if self.force_subcategory() == 0:
                for category, value in self.policy.legacy.items():
                    # Every legacy category overwrites all its subcategories (MS-GPSB 3.2.5.6).
                    for guid in legacy_category_subcategories(category):
                        self.policy.lsa[guid] = value
            policy_size_kb = self.registry.get(EVENTLOG_POLICY_KEY, {}).get("MaxSize")
            if isinstance(policy_size_kb, int) and policy_size_kb > 0:
                self.security_log.max_size = policy_size_kb * 1024

    def force_subcategory(self) -> int | None:
        value = self.registry.get(LSA_KEY, {}).get(FORCE_VALUE)
        return int(value) if value is not None else None

    def cmdline_enabled(self) -> int | None:
        value = self.registry.get(AUDIT_KEY, {}).get(CMDLINE_VALUE)
        return int(value) if value is not None else None

    def audit_success_effective(self) -> bool:
        return bool(self.policy.lsa.get(PROCESS_CREATION, 0) & 1)

    def supports_cmdline(self) -> bool:
        major, minor, *_ = (int(p) for p in self.os.version.split("."))
        if (major, minor) >= (6, 3):
            return True
        return (major, minor) == (6, 1) and "KB3004375" in self.os.hotfixes

    def event_version(self) -> int:
        """4688 version: 2 on Windows 10 / 2016+, 1 where the command line is supported, else 0 (no CommandLine)."""
        if int(self.os.version.split(".")[0]) >= 10:
            return 2
        return 1 if self.supports_cmdline() else 0


@dataclass
class LabWorld:
    """Everything in one lab that a host's scripts can reach beyond the host itself (a DC's domain, SCOM)."""

    hosts: dict[str, LabHost] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    # The domain (AD and Group Policy) the lab's DCs serve: procaudit.lab.directory, created on first use.
    directory: Any = field(default=None, repr=False)
    # The lab's wall clock (UTC) for handlers that read the time; tests pin it to a chosen weekday and hour.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
