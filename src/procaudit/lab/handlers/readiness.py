"""Lab implementation of checks/Get-ProcAuditFacts.ps1 (the readiness probe).

Every part is produced the way the script produces it on Windows: the tools' own text from the host's
state (``procaudit.lab.wintext``), the same host-side trimming, and 4688 counts from the modelled Security
log (``procaudit.lab.eventlog``), newest first and capped at ``MaxEvents``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from procaudit.lab import eventlog, wintext
from procaudit.lab.handlers.common import BindingError, optional_int
from procaudit.lab.model import AUDIT_KEY, CMDLINE_VALUE, FORCE_VALUE, LSA_KEY, LabHost
from procaudit.lab.scripts import HandlerContext, handles, ps_json
from procaudit.lab.wsman import ScriptOutcome, ScriptRun

_REGISTRY_READS = (
    (AUDIT_KEY.removeprefix("HKLM\\"), CMDLINE_VALUE),
    (LSA_KEY.removeprefix("HKLM\\"), FORCE_VALUE),
    (r"SOFTWARE\Policies\Microsoft\Windows\EventLog\Security", "MaxSize"),
    (r"SOFTWARE\Policies\Microsoft\Windows\EventLog\Security", "Retention"),
)


@handles("Get-ProcAuditFacts")
def _facts(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    host = ctx.host
    try:
        window_hours = optional_int(run, "WindowHours", 24, 1, 720)
        max_events = optional_int(run, "MaxEvents", 2000, 1, 100000)
    except BindingError as exc:
        return ScriptOutcome(failure=str(exc))
    policy_names = [str(n) for n in run.parameters.get("PolicyNames") or []]
    now = datetime.now(UTC)
    stats = eventlog.log_stats(host, now)
    os = host.os
    document: dict[str, Any] = {
        "ComputerName": os.computer_name,
        "CollectedAt": wintext.dotnet_utc(now),
        "PSVersion": os.ps_version,
        "OS": {"Caption": os.caption, "Version": os.version, "BuildNumber": os.build, "ProductType": os.product_type},
        "HotFixIds": list(os.hotfixes) if os.version.startswith(("6.1.", "6.2.")) else None,
        "AuditPolicyCsv": wintext.auditpol_backup(host),
        "SecurityTemplate": wintext.trim_security_template(wintext.secedit_export(host)),
        "Registry": [_registry_value(host, key, name) for key, name in _REGISTRY_READS],
        "SecurityChannel": wintext.wevtutil_gl_security(host),
        "SecurityLog": {
            "FileSize": stats.file_size,
            "RecordCount": stats.record_count,
            "MaximumSizeInBytes": host.security_log.max_size,
            "LogMode": wintext.log_mode(host),
            "IsLogFull": host.security_log.retention != "overwrite" and stats.file_size >= host.security_log.max_size,
            "OldestRecordTime": wintext.dotnet_utc(stats.oldest),
        },
        "EventLogReaders": {
            "Method": _readers_method(host),
            "Members": [{"Sid": sid, "Name": name} for sid, name in host.event_log_readers],
        },
        "Events4688": _events(host, now, window_hours, max_events),
        "HealthService": _health_service(host),
        "ManagementGroups": list(host.services.scom_management_groups) if host.services.scom_agent != "absent" else [],
        "GpResultXml": wintext.trim_rsop(wintext.gpresult_rsop(host, now), policy_names),
        "Errors": {},
    }
    return ScriptOutcome(output=[ps_json(document)])


def _registry_value(host: LabHost, key: str, name: str) -> dict[str, Any]:
    value = host.registry.get("HKLM\\" + key, {}).get(name)
    kind = None if value is None else ("DWord" if isinstance(value, int) else "String")
    return {"Key": "HKLM\\" + key, "Name": name, "Value": value, "Kind": kind}


def _readers_method(host: LabHost) -> str:
    # Get-LocalGroupMember fails on domain controllers and does not exist before Windows 10 / Server 2016
    # (its module ships with the OS, not with WMF 5.1): the script falls back to the WinNT provider there.
    if host.os.product_type == 2 or int(host.os.version.split(".")[0]) < 10:
        return "WinNT"
    return "Get-LocalGroupMember"


def _health_service(host: LabHost) -> dict[str, str] | None:
    state = host.services.scom_agent
    if state == "absent":
        return None
    return {"State": "Running" if state == "running" else "Stopped", "StartMode": "Auto"}


def _events(host: LabHost, now: datetime, window_hours: int, max_events: int) -> dict[str, Any]:
    """Count the newest ``max_events`` 4688 events of the window, as Get-WinEvent -MaxEvents returns them."""
    start = now - timedelta(hours=window_hours)
    # Explicitly recorded events (the verify marker) first: they are the newest.
    recorded = sorted(
        (e for e in host.events if e.event_id == 4688 and start <= e.time <= now), key=lambda e: e.time, reverse=True
    )
    sampled = with_cmd = 0
    newest: datetime | None = None
    oldest: datetime | None = None
    for event in recorded[:max_events]:
        sampled += 1
        with_cmd += 1 if event.fields.get("CommandLine", "").strip() else 0
        newest = newest or event.time
        oldest = event.time
    rows = eventlog.hourly_counts(host, 4688, start, now)
    for hour, events, cmdline in reversed(rows):
        if sampled >= max_events:
            break
        if events <= 0:
            continue
        take = min(events, max_events - sampled)
        end = min(hour + eventlog.HOUR, now)
        first = max(hour, start)
        if newest is None:
            newest = end - timedelta(seconds=1)
        # Events spread evenly over the hour: the oldest one counted is as far back as the share taken.
        oldest = end - (end - first) * (take / events)
        sampled += take
        with_cmd += round(cmdline * take / events)
    return {
        "WindowHours": window_hours,
        "MaxEvents": max_events,
        "Sampled": sampled,
        "WithCommandLine": min(with_cmd, sampled),
        "NewestTime": wintext.dotnet_utc(newest) if newest else None,
        "OldestTime": wintext.dotnet_utc(oldest) if oldest else None,
    }
