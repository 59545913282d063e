"""The readiness checks' logic: one pure function of ``HostFacts`` (and the check's params) per check id.

Rules every evaluator keeps: a fact that could not be read gives UNKNOWN with the reason (never FAIL); a
detail says what was found in words an administrator can act on; evidence holds the raw values behind it.
No evaluator reads command lines: the probe never collects any.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from procaudit.facts import HostFacts, SourcedSetting, force_in_effect, legacy_in_the_way
from procaudit.parsers.osinfo import KB_CMDLINE, CmdlineSupport

MB: Final = 1024 * 1024


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    UNKNOWN = "UNKNOWN"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)


Evaluator = Callable[[HostFacts, Mapping[str, Any]], Outcome]
EVALUATORS: dict[str, Evaluator] = {}


def evaluator(check_id: str) -> Callable[[Evaluator], Evaluator]:
    def register(fn: Evaluator) -> Evaluator:
        EVALUATORS[check_id] = fn
        return fn

    return register


def _unknown(facts: HostFacts, part: str, what: str) -> Outcome:
    why = facts.problems.get(part) or "it was not collected"
    return Outcome(Status.UNKNOWN, f"{what} could not be read: {why}")


_SETTING_NAMES: Final = {0: "No Auditing", 1: "Success", 2: "Failure", 3: "Success and Failure", 4: "No Auditing"}


def _setting(value: int | None) -> str:
    return "not set" if value is None else f"{_SETTING_NAMES.get(value, 'unknown')} ({value})"


def _where(source: SourcedSetting) -> str:
    return source.where


@evaluator("audit_process_creation_success")
def audit_process_creation_success(facts: HostFacts, params: Mapping[str, Any]) -> Outcome:
    if facts.audit is None:
        return _unknown(facts, "audit", "The effective audit policy (auditpol /backup)")
    value = facts.audit.process_creation
    evidence = {"setting_value": value, "source": "auditpol /backup"}
    if value is None:
        return Outcome(Status.UNKNOWN, "auditpol /backup has no Process Creation row", evidence)
    if value in (1, 3):
        return Outcome(Status.PASS, f"Process Creation audits {_setting(value)}", evidence)
    detail = f"Process Creation is {_setting(value)}: no 4688 is written"
    legacy = legacy_in_the_way(facts)
    if legacy is not None:
        detail += f"; {legacy.where} applies the legacy 'Audit process tracking' category over it"
    return Outcome(Status.FAIL, detail, evidence)


@evaluator("audit_force_subcategory_policy")
def audit_force_subcategory_policy(facts: HostFacts, params: Mapping[str, Any]) -> Outcome:
    force = facts.registry.force_subcategory
    gpo = facts.policy.legacy_process_tracking if facts.policy else None
    evidence: dict[str, Any] = {
        "scenoapplylegacyauditpolicy": force,
        "legacy_process_tracking_gpo": gpo.gpo_name or gpo.gpo_id if gpo else None,
        "legacy_process_tracking_local": facts.legacy.process_tracking if facts.legacy else None,
    }
    if force == 1:
        return Outcome(Status.PASS, "SCENoApplyLegacyAuditPolicy = 1: subcategory settings win", evidence)
    if force_in_effect(facts):
        return Outcome(
            Status.PASS,
            "SCENoApplyLegacyAuditPolicy is not set: its effective default (Enabled since Windows Vista / Server "
            "2008) lets subcategory settings win",
            evidence,
        )
    state = "not set" if force is None else f"{force}"
    legacy = legacy_in_the_way(facts)
    if legacy is not None:
        return Outcome(
            Status.FAIL,
            f"{legacy.where} applies the legacy 'Audit process tracking' category "
            f"({_setting(legacy.value)}) and SCENoApplyLegacyAuditPolicy is {state}: every policy refresh "
            "overwrites Process Creation",
            evidence,
        )
    detail = (
        f"SCENoApplyLegacyAuditPolicy is {state}: any legacy category policy applied later would overwrite "
        "Process Creation"
    )
    if facts.policy is None:
        detail += " (the GPO settings could not be read, so a legacy policy cannot be ruled out)"
    return Outcome(Status.WARN, detail, evidence)


@evaluator("cmdline_inclusion_enabled")
def cmdline_inclusion_enabled(facts: HostFacts, params: Mapping[str, Any]) -> Outcome:
    value = facts.registry.cmdline_enabled
    evidence = {"processcreationincludecmdline_enabled": value}
    if value == 1:
        return Outcome(Status.PASS, "ProcessCreationIncludeCmdLine_Enabled = 1", evidence)
    state = "is not set (the default: off)" if value is None else f"= {value}"
    detail = f"ProcessCreationIncludeCmdLine_Enabled {state}: 4688 events carry no command line"
    source = facts.policy.cmdline if facts.policy else None
    if source is not None and source.value == 0:
        detail += f"; {_where(source)} disables it"
    return Outcome(Status.FAIL, detail, evidence)


@evaluator("os_supports_cmdline")
def os_supports_cmdline(facts: HostFacts, params: Mapping[str, Any]) -> Outcome:
    if facts.os is None:
        return _unknown(facts, "os", "The OS version")
    os = facts.os
    evidence = {
        "version": os.version,
        "caption": facts.os_caption,
        "kb3004375": None if os.hotfix_ids is None else KB_CMDLINE in os.hotfix_ids,
        "event_4688_version": os.event_4688_version,
    }
    reason = os.cmdline_reason
    if os.cmdline_support == CmdlineSupport.SUPPORTED:
        return Outcome(Status.PASS, reason, evidence)
    if os.cmdline_support == CmdlineSupport.UNKNOWN:
        return Outcome(Status.UNKNOWN, reason, evidence)
    return Outcome(Status.FAIL, reason, evidence)


def _days(seconds: float) -> str:
    days = seconds / 86400
    return f"{days:.1f} days" if days < 10 else f"{days:.0f} days"


@evaluator("security_log_capacity")
def security_log_capacity(facts: HostFacts, params: Mapping[str, Any]) -> Outcome:
    log = facts.security_log
    if log is None or log.max_size is None:
        return _unknown(facts, "security_log", "The Security log size")
    min_days = float(params.get("min_days", 7))
    recommended = int(params.get("recommended_kb", 196608)) * 1024
    full_ratio = float(params.get("full_ratio", 0.9))
    size_mb = log.max_size / MB
    evidence: dict[str, Any] = {
        "max_size_bytes": log.max_size,
        "file_size_bytes": log.file_size,
        "oldest_record": log.oldest_record.isoformat() if log.oldest_record else None,
    }
    below = log.max_size < recommended
    if log.oldest_record is None or not log.file_size:
        if below:
            return Outcome(
                Status.WARN,
                f"{size_mb:.0f} MB is below the {recommended // MB} MB baseline; how many days it keeps is unknown",
                evidence,
            )
        return Outcome(Status.UNKNOWN, f"{size_mb:.0f} MB; how many days it keeps is unknown", evidence)
    span = max((facts.collected_at - log.oldest_record).total_seconds(), 1.0)
    fill = log.file_size / log.max_size
    wrapping = fill >= full_ratio
    # A wrapping log holds exactly its span; one still filling will hold span / fill at the current rate.
    kept = span if wrapping else span / max(fill, 1e-6)
    evidence["days_kept"] = round(kept / 86400, 2)
    evidence["wrapping"] = wrapping
    how = "holds" if wrapping else "will hold at the current rate"
    if kept < min_days * 86400:
        suggested = max(recommended, math.ceil(log.max_size * (min_days * 86400 / kept) * 1.25 / (64 * MB)) * 64 * MB)
        evidence["suggested_max_size_bytes"] = suggested
        detail = (
            f"{size_mb:.0f} MB {how} only {_days(kept)} of events (at least {min_days:g} wanted): "
            f"raise it to {suggested // MB} MB or more"
        )
        if facts.events_4688 is not None and facts.events_4688.sampled == 0:
            detail += "; enabling 4688 will add more (procaudit estimate projects how much)"
        return Outcome(Status.FAIL, detail, evidence)
    if below:
        return Outcome(
            Status.WARN,
            f"{size_mb:.0f} MB {how} {_days(kept)}, but is below the {recommended // MB} MB baseline "
            "(Microsoft security baseline, CIS)",
            evidence,
        )
    return Outcome(Status.PASS, f"{size_mb:.0f} MB, {how} {_days(kept)} of events", evidence)


@evaluator("security_log_retention_mode")
def security_log_retention_mode(facts: HostFacts, params: Mapping[str, Any]) -> Outcome:
    log = facts.security_log
    if log is None or log.log_mode is None:
        return _unknown(facts, "security_log", "The Security log retention mode")
    evidence = {"log_mode": log.log_mode}
    if log.log_mode == "Circular":
        return Outcome(Status.PASS, "overwrite events as needed (Circular)", evidence)
    if log.log_mode == "AutoBackup":
        return Outcome(
            Status.WARN, "archives the log when full (AutoBackup): archives accumulate on disk until pruned", evidence
        )
    return Outcome(
        Status.FAIL,
        "does not overwrite events (Retain): once the log is full, new events - 4688 included - are lost",
        evidence,
    )


# Principals that mean "almost everybody" when they can read the Security log.
_BROAD: Final = {"S-1-1-0", "S-1-5-11", "S-1-5-32-545", "S-1-5-7", "S-1-5-4", "S-1-5-2", "alias:DU", "alias:DC"}


@evaluator("security_log_reader_exposure")
def security_log_reader_exposure(facts: HostFacts, params: Mapping[str, Any]) -> Outcome:
    readers = facts.readers
    if readers is None:
        return _unknown(facts, "readers", "Who can read the Security log")
    extra = list(readers.extra_channel_readers or ())
    members = list(readers.event_log_readers) if readers.event_log_readers is not None else None
    evidence: dict[str, Any] = {
        "extra_channel_readers": [str(p) for p in extra],
        "event_log_readers_members": None if members is None else [m.name or m.sid for m in members],
        "channel_access": facts.security_log.channel_access if facts.security_log else None,
    }
    parts = []
    if extra:
        broad = [str(p) for p in extra if p.key in _BROAD]
        parts.append("the channel ACL also lets read: " + ", ".join(str(p) for p in extra))
        if broad:
            parts.append("that includes broad groups (" + ", ".join(broad) + ")")
    if members:
        parts.append("Event Log Readers has members: " + ", ".join(m.name or m.sid or "?" for m in members))
    if parts:
        return Outcome(Status.WARN, "; ".join(parts) + ": all of them will read every command line", evidence)
    if readers.channel_readers is None:
        return _unknown(facts, "security_log", "The Security channel ACL")
    if members is None:
        why = facts.problems.get("readers") or "not collected"
        return Outcome(
            Status.UNKNOWN,
            f"the channel ACL is the default, but Event Log Readers could not be listed: {why}",
            evidence,
        )
    return Outcome(
        Status.PASS,
        "only SYSTEM, Administrators and Event Log Readers (no members) can read the Security log",
        evidence,
    )


def _ago(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(seconds, 0) / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@evaluator("events_4688_with_cmdline_present")
def events_4688_with_cmdline_present(facts: HostFacts, params: Mapping[str, Any]) -> Outcome:
    events = facts.events_4688
    if events is None:
        return _unknown(facts, "events_4688", "Recent 4688 events")
    pass_share = float(params.get("pass_share", 0.9))
    share = events.command_line_share
    evidence: dict[str, Any] = {
        "window_hours": events.window_hours,
        "counted": events.sampled,
        "with_command_line": events.with_command_line,
        "share": round(share, 3) if share is not None else None,
        "newest": events.newest.isoformat() if events.newest else None,
        "capped_at_max_events": events.truncated,
    }
    window = f"the last {events.window_hours} h"
    log = facts.security_log
    if log is not None and log.oldest_record is not None:
        reach = (facts.collected_at - log.oldest_record).total_seconds()
        if reach < events.window_hours * 3600:
            window += f" (the log only reaches back {_ago(reach)})"
    if events.sampled == 0:
        return Outcome(Status.FAIL, f"no 4688 event in {window}", evidence)
    counted = f"{'the newest ' if events.truncated else ''}{events.sampled} 4688 events of {window}"
    if events.with_command_line == 0:
        return Outcome(Status.FAIL, f"{counted}: none has a command line", evidence)
    newest = ""
    if events.newest is not None:
        newest = f", newest {_ago((facts.collected_at - events.newest).total_seconds())} ago"
    assert share is not None
    if share < pass_share:
        return Outcome(Status.WARN, f"{counted}: only {share:.0%} have a command line{newest}", evidence)
    return Outcome(Status.PASS, f"{counted}: {share:.0%} with a command line{newest}", evidence)


@evaluator("scom_agent_healthy")
def scom_agent_healthy(facts: HostFacts, params: Mapping[str, Any]) -> Outcome:
    scom = facts.scom
    evidence = {"state": scom.state, "start_mode": scom.start_mode, "management_groups": list(scom.management_groups)}
    if not scom.installed:
        return Outcome(Status.FAIL, "the SCOM agent (HealthService) is not installed", evidence)
    if (scom.state or "").lower() != "running":
        return Outcome(
            Status.FAIL, f"HealthService is {scom.state or 'not running'} (start mode {scom.start_mode})", evidence
        )
    if not scom.management_groups:
        return Outcome(Status.WARN, "HealthService runs but reports to no management group", evidence)
    return Outcome(Status.PASS, "HealthService runs, reports to " + ", ".join(scom.management_groups), evidence)


@evaluator("policy_source_consistent")
def policy_source_consistent(facts: HostFacts, params: Mapping[str, Any]) -> Outcome:
    policy = facts.policy
    if policy is None:
        return _unknown(facts, "policy", "The resultant set of policy (gpresult)")
    pc, cmd, legacy, force = (
        policy.process_creation,
        policy.cmdline,
        policy.legacy_process_tracking,
        policy.force_subcategory,
    )

    def describe(source: SourcedSetting | None) -> dict[str, Any] | None:
        return None if source is None else {"gpo": source.gpo_name or source.gpo_id, "value": source.value}

    evidence = {
        "process_creation": describe(pc),
        "cmdline": describe(cmd),
        "legacy_process_tracking": describe(legacy),
        "force_subcategory": describe(force),
    }
    conflicts: list[str] = []
    drift: list[str] = []
    if pc is not None and pc.value not in (1, 3):
        conflicts.append(f"{_where(pc)} sets Audit Process Creation to {_setting(pc.value)}")
    if cmd is not None and cmd.value == 0:
        conflicts.append(f"{_where(cmd)} disables 'Include command line in process creation events'")
    if force is not None and force.value == 0:
        conflicts.append(f"{_where(force)} sets SCENoApplyLegacyAuditPolicy to 0")
    blocking = legacy_in_the_way(facts)
    if blocking is not None and blocking.gpo is not None:
        conflicts.append(f"{blocking.where} applies the legacy 'Audit process tracking' category")
    audit = facts.audit.process_creation if facts.audit else None
    if pc is not None and pc.value in (1, 3) and audit is not None and audit not in (1, 3):
        drift.append(
            f"{_where(pc)} sets Process Creation to {_setting(pc.value)} but the effective value is {_setting(audit)}"
        )
    registry_cmd = facts.registry.cmdline_enabled
    if cmd is not None and cmd.value == 1 and registry_cmd != 1:
        drift.append(f"{_where(cmd)} enables the command line but the registry value is {registry_cmd}")
    if conflicts:
        return Outcome(
            Status.FAIL,
            "; ".join(conflicts) + ": a local change is undone at the next policy refresh; change it at the source",
            evidence,
        )
    if drift:
        return Outcome(Status.WARN, "; ".join(drift) + " (another source overrides the winning GPO)", evidence)
    owners = sorted({_where(s) for s in (pc, cmd, force) if s is not None})
    if owners:
        return Outcome(Status.PASS, "settings come from " + ", ".join(owners) + " and agree with it", evidence)
    return Outcome(
        Status.PASS,
        "no GPO sets Process Creation or the command-line policy (ADMX names matched in English): local settings stay",
        evidence,
    )
