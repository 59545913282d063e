"""Lab host profiles: the starting state of each kind of host the lab can serve.

Each profile is a small scenario an administrator meets in a real estate; the readiness checks, the
estimate and the rollout are tested against them. Names are stable: tests, docs and inventories use them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from procaudit.errors import UserInputError
from procaudit.lab.model import (
    AUDIT_KEY,
    CMDLINE_VALUE,
    DEFAULT_SECURITY_SDDL,
    FORCE_VALUE,
    LSA_KEY,
    PROCESS_CREATION,
    ActivityProfile,
    GpoSetting,
    InstalledMp,
    LabHost,
    OsIdentity,
    PolicyState,
    Role,
    ScomServer,
    SecurityLog,
    Services,
)

PROCESS_TERMINATION = "{0CCE922C-69AE-11D9-BED3-505054503030}"
MB = 1024 * 1024

_SERVER_2019 = ("Microsoft Windows Server 2019 Standard", "10.0.17763", "5.1.17763.592")
_SERVER_2022 = ("Microsoft Windows Server 2022 Datacenter", "10.0.20348", "5.1.20348.558")
_SERVER_2016 = ("Microsoft Windows Server 2016 Standard", "10.0.14393", "5.1.14393.1884")
_WINDOWS_10 = ("Microsoft Windows 10 Enterprise", "10.0.19045", "5.1.19041.1320")
_WINDOWS_7 = ("Microsoft Windows 7 Enterprise", "6.1.7601", "5.1.14409.1005")

# The domain's own baselines (the two default GPOs keep their well-known GUIDs in lab/directory.py).
CORP_BASELINE_GPO = ("{5B1F0A8E-3C2D-4E6F-9A7B-1C2D3E4F5A6B}", "CORP Server Baseline")
LEGACY_AUDIT_GPO = ("{8E2D4C6A-1B3F-4D5E-8F9A-0B1C2D3E4F50}", "CORP Legacy Audit (2008)")


@dataclass(frozen=True)
class ProfileInfo:
    name: str
    summary: str
    build: Callable[[str], LabHost]


def _host(
    name: str,
    profile: str,
    role: Role,
    os: tuple[str, str, str],
    *,
    product_type: int,
    per_day: int,
    audit: int = 0,
    cmdline: int | None = None,
    force: int | None = None,
    log_mb: int = 20,
    scom: str = "running",
    sysmon: bool = False,
    hotfixes: tuple[str, ...] = (),
    audit_days: int = 0,
) -> LabHost:
    caption, version, ps_version = os
    registry: dict[str, dict[str, int | str]] = {AUDIT_KEY: {}, LSA_KEY: {}}
    if cmdline is not None:
        registry[AUDIT_KEY][CMDLINE_VALUE] = cmdline
    if force is not None:
        registry[LSA_KEY][FORCE_VALUE] = force
    policy = PolicyState(lsa={PROCESS_CREATION: audit})
    if audit:
        policy.local_advanced[PROCESS_CREATION] = audit
    host = LabHost(
        name=name,
        profile=profile,
        role=role,
        os=OsIdentity(
            computer_name=name.upper()[:15],
            caption=caption,
            version=version,
            build=version.rsplit(".", 1)[-1],
            product_type=product_type,
            ps_version=ps_version,
            hotfixes=list(hotfixes),
        ),
        policy=policy,
        registry=registry,
        security_log=SecurityLog(max_size=log_mb * MB),
        activity=ActivityProfile(per_day=per_day, seed=sum(name.encode())),
        services=Services(scom_agent=scom, sysmon=sysmon),  # type: ignore[arg-type]
        event_log_readers=[],
    )
    if audit_days:
        host.logging_since[4688] = datetime.now(UTC) - timedelta(days=audit_days)
    return host


def _fresh_2019(name: str) -> LabHost:
    return _host(name, "fresh-2019", "member", _SERVER_2019, product_type=3, per_day=3000, scom="absent")


def _ready(name: str, profile: str = "ready") -> LabHost:
    return _host(
        name,
        profile,
        "member",
        _SERVER_2019,
        product_type=3,
        per_day=3000,
        audit=1,
        cmdline=1,
        force=1,
        log_mb=512,
        audit_days=30,
    )


def _cmdline_off(name: str) -> LabHost:
    host = _ready(name, "cmdline-off")
    host.registry[AUDIT_KEY][CMDLINE_VALUE] = 0
    host.security_log.record_size = 460  # 4688 without a command line: median 456 B on disk
    return host


def _legacy_override(name: str) -> LabHost:
    # Someone set Process Creation locally, but an old GPO still defines the legacy "Audit process tracking"
    # category as No auditing, and the force-subcategory flag is 0 (disabled, as old baselines left it): every
    # refresh wipes the subcategory.
    host = _host(
        name, "legacy-override", "member", _SERVER_2016, product_type=3, per_day=2500, audit=1, log_mb=128, force=0
    )
    guid, gpo = LEGACY_AUDIT_GPO
    host.policy.legacy["AuditProcessTracking"] = 0
    host.policy.legacy_gpo["AuditProcessTracking"] = GpoSetting(guid, gpo, 0)
    host.registry[AUDIT_KEY][CMDLINE_VALUE] = 1
    host.refresh_policy()
    return host


def _small_log(name: str) -> LabHost:
    host = _ready(name, "small-log")
    host.security_log.max_size = 20 * MB
    host.activity.per_day = 15000
    return host


def _no_scom_agent(name: str) -> LabHost:
    host = _ready(name, "no-scom-agent")
    host.services.scom_agent = "absent"
    host.services.scom_management_groups = []
    return host


def _win7_no_kb(name: str) -> LabHost:
    # Windows 7 SP1 with WMF 5.1 but without KB3004375: 4688 is logged, never with a command line.
    host = _host(
        name,
        "win7-no-kb",
        "workstation",
        _WINDOWS_7,
        product_type=1,
        per_day=1200,
        audit=1,
        cmdline=1,
        force=1,
        log_mb=64,
        hotfixes=("KB976902", "KB3125574"),
        audit_days=30,
    )
    host.security_log.record_size = 460  # no command line in any 4688
    return host


def _readers_exposed(name: str) -> LabHost:
    host = _ready(name, "readers-exposed")
    host.event_log_readers = [
        ("S-1-5-21-3623811015-3361044348-30300820-1105", "CORP\\Helpdesk"),
        ("S-1-5-21-3623811015-3361044348-30300820-2113", "CORP\\svc-siem"),
    ]
    host.security_log.channel_sddl = DEFAULT_SECURITY_SDDL + "(A;;0x1;;;NS)(A;;0x1;;;AU)"
    return host


def _gpo_managed(name: str) -> LabHost:
    # A domain baseline GPO owns the settings: Process Creation off (termination on), command line disabled.
    host = _host(name, "gpo-managed", "member", _SERVER_2019, product_type=3, per_day=3000, force=1, log_mb=128)
    guid, gpo = CORP_BASELINE_GPO
    host.policy.domain_advanced[PROCESS_CREATION] = GpoSetting(guid, gpo, 0)
    host.policy.domain_advanced[PROCESS_TERMINATION] = GpoSetting(guid, gpo, 1)
    host.policy.domain_registry[(AUDIT_KEY, CMDLINE_VALUE)] = GpoSetting(guid, gpo, 0)
    host.refresh_policy()
    host.logging_since[4689] = datetime.now(UTC) - timedelta(days=60)
    return host


def _workstation(name: str) -> LabHost:
    host = _host(
        name, "workstation", "workstation", _WINDOWS_10, product_type=1, per_day=1500, force=1, log_mb=20, sysmon=True
    )
    return host


def _dc(name: str) -> LabHost:
    return _host(name, "dc", "dc", _SERVER_2022, product_type=2, per_day=8000, force=1, log_mb=128)


def _rds(name: str) -> LabHost:
    host = _host(
        name,
        "rds",
        "rds",
        _SERVER_2016,
        product_type=3,
        per_day=60000,
        audit=1,
        cmdline=1,
        force=1,
        log_mb=64,
        audit_days=14,
    )
    host.security_log.record_size = 950  # users' sessions: longer paths and arguments than a server's services
    return host


#: The sealed libraries a SCOM 2019 management group has (versions of the 2019 release), which the procaudit MP
#: references at lower minimum versions.
SCOM_2019_LIBRARIES = {
    "System.Library": ("10.19.10050.0", "System Library"),
    "Microsoft.Windows.Library": ("10.19.10050.0", "Windows Core Library"),
    "System.Health.Library": ("10.19.10050.0", "Health Library"),
    "Microsoft.SystemCenter.Library": ("10.19.10050.0", "System Center Core Library"),
}


def _scom(name: str) -> LabHost:
    host = _host(name, "scom", "scom", _SERVER_2019, product_type=3, per_day=4000, force=1, log_mb=128)
    host.security_log.record_size = 2100  # management workflows run long encoded PowerShell (~2.3 KB records)
    installed = datetime.now(UTC) - timedelta(days=400)
    host.scom = ScomServer(
        management_group="CORP-MG",
        management_packs={
            mp_id: InstalledMp(id=mp_id, version=version, sealed=True, display_name=display, imported=installed)
            for mp_id, (version, display) in SCOM_2019_LIBRARIES.items()
        },
    )
    return host


PROFILES: dict[str, ProfileInfo] = {
    p.name: p
    for p in [
        ProfileInfo("fresh-2019", "new Server 2019: nothing enabled, 20 MB Security log, no SCOM agent", _fresh_2019),
        ProfileInfo("ready", "everything configured, 4688 with command line flowing, SCOM agent running", _ready),
        ProfileInfo("cmdline-off", "4688 audited, command-line inclusion disabled", _cmdline_off),
        ProfileInfo(
            "legacy-override",
            "legacy 'Audit process tracking' GPO wipes the subcategory (force flag 0)",
            _legacy_override,
        ),
        ProfileInfo("small-log", "configured, but a 20 MB Security log on a busy server", _small_log),
        ProfileInfo("no-scom-agent", "configured, no SCOM agent installed", _no_scom_agent),
        ProfileInfo("win7-no-kb", "Windows 7 SP1 without KB3004375: no command lines possible", _win7_no_kb),
        ProfileInfo(
            "readers-exposed", "extra principals can read the Security log (Event Log Readers, SDDL)", _readers_exposed
        ),
        ProfileInfo(
            "gpo-managed", "a domain GPO owns the settings (Process Creation off, command line off)", _gpo_managed
        ),
        ProfileInfo("workstation", "Windows 10 workstation with Sysmon, auditing not yet enabled", _workstation),
        ProfileInfo("dc", "Server 2022 domain controller, auditing not yet enabled", _dc),
        ProfileInfo("rds", "busy Server 2016 terminal server, auditing on, 64 MB log", _rds),
        ProfileInfo("scom", "SCOM 2019 management server (management group CORP-MG), no procaudit MP yet", _scom),
    ]
}

# A dozen mixed hosts for the demo and the default 'lab up'.
DEMO_MIX = [
    "ready",
    "ready",
    "fresh-2019",
    "cmdline-off",
    "legacy-override",
    "small-log",
    "no-scom-agent",
    "win7-no-kb",
    "readers-exposed",
    "gpo-managed",
    "workstation",
    "dc",
    "rds",
]


def build_host(profile: str, name: str) -> LabHost:
    try:
        info = PROFILES[profile]
    except KeyError:
        raise UserInputError(f"unknown lab profile {profile!r}; choose from {', '.join(PROFILES)}") from None
    return info.build(name)
