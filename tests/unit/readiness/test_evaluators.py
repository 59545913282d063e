"""Evaluator edge cases the lab profiles do not reach; the profiles themselves are in tests/lab."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from procaudit.facts import (
    GroupMember,
    HostFacts,
    LegacyAuditFacts,
    RegistryFacts,
    RegistryValueFact,
    SourcedSetting,
    legacy_in_the_way,
)
from procaudit.readiness.catalog import load_catalog
from procaudit.readiness.engine import HostStatus, evaluate, host_status, readiness_for, summarize
from procaudit.readiness.evaluators import EVALUATORS, Status

Facts = Callable[[str], HostFacts]
MB = 1024 * 1024


def run(check_id: str, facts: HostFacts) -> tuple[Status, str]:
    meta = next(c for c in load_catalog() if c.id == check_id)
    outcome = EVALUATORS[check_id](facts, meta.params)
    return outcome.status, outcome.detail


def with_log(facts: HostFacts, **changes: Any) -> HostFacts:
    assert facts.security_log is not None
    return facts.model_copy(update={"security_log": facts.security_log.model_copy(update=changes)})


def test_missing_audit_policy_is_unknown_with_the_reason(lab_facts: Facts) -> None:
    facts = lab_facts("ready").model_copy(update={"audit": None, "problems": {"audit": "auditpol.exe exited 5"}})
    assert run("audit_process_creation_success", facts) == (
        Status.UNKNOWN,
        "The effective audit policy (auditpol /backup) could not be read: auditpol.exe exited 5",
    )


def test_capacity_of_a_log_still_filling_is_projected(lab_facts: Facts) -> None:
    facts = lab_facts("ready")
    # Half full after 2 days: at this rate it will hold 4 days.
    filling = with_log(
        facts, max_size=512 * MB, file_size=256 * MB, oldest_record=facts.collected_at - timedelta(days=2)
    )
    status, detail = run("security_log_capacity", filling)
    assert status == Status.FAIL and "will hold at the current rate only 4.0 days" in detail
    roomy = with_log(filling, file_size=64 * MB)
    assert run("security_log_capacity", roomy)[0] == Status.PASS
    small_but_quiet = with_log(roomy, max_size=128 * MB, file_size=16 * MB)
    assert run("security_log_capacity", small_but_quiet)[0] == Status.WARN
    unknown_age = with_log(facts, oldest_record=None)
    assert run("security_log_capacity", unknown_age)[0] == Status.UNKNOWN  # 512 MB: only the days are unknown


def test_capacity_suggests_a_size_for_the_wanted_days(lab_facts: Facts) -> None:
    status, detail = run("security_log_capacity", lab_facts("small-log"))
    assert status == Status.FAIL
    suggested = int(detail.split("raise it to ")[1].split(" MB")[0])
    assert suggested % 64 == 0 and suggested >= 192


@pytest.mark.parametrize(
    ("mode", "status"), [("Circular", Status.PASS), ("AutoBackup", Status.WARN), ("Retain", Status.FAIL)]
)
def test_retention_modes(lab_facts: Facts, mode: str, status: Status) -> None:
    assert run("security_log_retention_mode", with_log(lab_facts("ready"), log_mode=mode))[0] == status


def test_reader_members_that_could_not_be_listed_are_unknown_but_do_not_block(lab_facts: Facts) -> None:
    facts = lab_facts("ready")
    assert facts.readers is not None
    blind = facts.model_copy(
        update={
            "readers": facts.readers.model_copy(update={"event_log_readers": None}),
            "problems": {"readers": "Failed to compare two elements in the array."},
        }
    )
    status, detail = run("security_log_reader_exposure", blind)
    assert status == Status.UNKNOWN and "Failed to compare" in detail
    findings = evaluate(blind, load_catalog())
    assert host_status(findings, load_catalog()) == HostStatus.READY  # non-blocking check


def test_reader_members_are_named(lab_facts: Facts) -> None:
    facts = lab_facts("ready")
    assert facts.readers is not None
    member = GroupMember(sid="S-1-5-21-1-2-3-1105", name="CORP\\Helpdesk")
    exposed = facts.model_copy(update={"readers": facts.readers.model_copy(update={"event_log_readers": (member,)})})
    status, detail = run("security_log_reader_exposure", exposed)
    assert status == Status.WARN and "CORP\\Helpdesk" in detail


def test_partial_command_line_share_warns(lab_facts: Facts) -> None:
    facts = lab_facts("ready")
    assert facts.events_4688 is not None
    half = facts.events_4688.model_copy(update={"with_command_line": facts.events_4688.sampled // 2})
    status, detail = run("events_4688_with_cmdline_present", facts.model_copy(update={"events_4688": half}))
    assert status == Status.WARN and "only 50%" in detail


def test_a_log_shorter_than_the_window_is_said(lab_facts: Facts) -> None:
    facts = with_log(lab_facts("fresh-2019"), oldest_record=lab_facts("fresh-2019").collected_at - timedelta(hours=3))
    status, detail = run("events_4688_with_cmdline_present", facts)
    assert status == Status.FAIL and "the log only reaches back 3.0 h" in detail


def test_scom_agent_states(lab_facts: Facts) -> None:
    facts = lab_facts("ready")
    stopped = facts.model_copy(update={"scom": facts.scom.model_copy(update={"state": "Stopped"})})
    orphan = facts.model_copy(update={"scom": facts.scom.model_copy(update={"management_groups": ()})})
    assert run("scom_agent_healthy", stopped) == (Status.FAIL, "HealthService is Stopped (start mode Auto)")
    assert run("scom_agent_healthy", orphan)[0] == Status.WARN


def test_policy_drift_and_force_flag_conflicts(lab_facts: Facts) -> None:
    facts = lab_facts("cmdline-off")
    assert facts.policy is not None
    gpo = SourcedSetting(
        value=1, gpo_id="{11111111-2222-3333-4444-555555555555}", gpo_name="Audit GPO", precedence=1, via="admx_policy"
    )
    drifted = facts.model_copy(update={"policy": facts.policy.model_copy(update={"cmdline": gpo})})
    status, detail = run("policy_source_consistent", drifted)
    assert status == Status.WARN and "GPO 'Audit GPO' enables the command line but the registry value is 0" in detail
    force_off = gpo.model_copy(update={"value": 0, "via": "security_option"})
    conflicted = facts.model_copy(update={"policy": facts.policy.model_copy(update={"force_subcategory": force_off})})
    assert run("policy_source_consistent", conflicted)[0] == Status.FAIL
    assert run("policy_source_consistent", facts.model_copy(update={"policy": None}))[0] == Status.UNKNOWN


def test_absent_command_line_value_fails_and_names_default(lab_facts: Facts) -> None:
    facts = lab_facts("ready")
    values = tuple(v for v in facts.registry.values if v.name != "ProcessCreationIncludeCmdLine_Enabled")
    absent = facts.model_copy(update={"registry": RegistryFacts(values=values)})
    assert run("cmdline_inclusion_enabled", absent)[1].startswith(
        "ProcessCreationIncludeCmdLine_Enabled is not set (the default: off)"
    )
    as_text = RegistryFacts(
        values=(
            *values,
            RegistryValueFact(
                key=facts.registry.values[0].key, name="ProcessCreationIncludeCmdLine_Enabled", value="1", kind="String"
            ),
        )
    )
    assert run("cmdline_inclusion_enabled", facts.model_copy(update={"registry": as_text}))[0] == Status.PASS


def test_a_crashing_evaluator_is_an_error_finding_and_the_others_still_run(
    lab_facts: Facts, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(facts: HostFacts, params: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setitem(EVALUATORS, "scom_agent_healthy", broken)
    host = readiness_for(lab_facts("ready"), load_catalog())
    by_id = {f.check_id: f for f in host.findings}
    assert by_id["scom_agent_healthy"].status == Status.ERROR and "KeyError" in by_id["scom_agent_healthy"].detail
    assert by_id["cmdline_inclusion_enabled"].status == Status.PASS
    assert host.status == HostStatus.UNKNOWN


def test_summary_counts_groups_and_orders_blockers_by_severity(lab_facts: Facts) -> None:
    catalog = load_catalog()
    hosts = [
        readiness_for(lab_facts("ready"), catalog, groups=["web"]),
        readiness_for(lab_facts("no-scom-agent"), catalog, groups=["web"]),
        readiness_for(lab_facts("no-scom-agent"), catalog, groups=["sql"]),
        readiness_for(lab_facts("cmdline-off"), catalog, groups=["sql"]),
    ]
    summary = summarize(hosts, catalog)
    assert (summary.total, summary.ready, summary.not_ready) == (4, 1, 3)
    assert [(g.group, g.total, g.ready) for g in summary.groups] == [("sql", 2, 0), ("web", 2, 1)]
    # cmdline-off is critical (1 host) and comes before the medium scom-agent (2 hosts).
    assert [b.short for b in summary.blockers][:2] == ["cmdline-off", "no-4688-cmdline"]
    assert summary.text.startswith("1 of 4 hosts ready; 1 blocked by cmdline-off;")
    assert "2 by scom-agent" in summary.text


def with_force(facts: HostFacts, value: int | None) -> HostFacts:
    values = tuple(v for v in facts.registry.values if v.name != "SCENoApplyLegacyAuditPolicy")
    if value is not None:
        lsa = r"HKLM\SYSTEM\CurrentControlSet\Control\Lsa"
        values += (RegistryValueFact(key=lsa, name="SCENoApplyLegacyAuditPolicy", value=value, kind="DWord"),)
    return facts.model_copy(update={"registry": RegistryFacts(values=values)})


def test_an_absent_force_flag_counts_as_its_default_enabled(lab_facts: Facts) -> None:
    legacy_gpo = lab_facts("legacy-override")  # a legacy GPO defines Audit process tracking = No auditing
    absent = with_force(legacy_gpo, None)
    assert legacy_in_the_way(absent) is None
    assert run("audit_force_subcategory_policy", absent)[0] == Status.PASS
    disabled = with_force(legacy_gpo, 0)
    status, detail = run("audit_force_subcategory_policy", disabled)
    assert status == Status.FAIL and "GPO 'CORP Legacy Audit (2008)'" in detail
    assert run("policy_source_consistent", disabled)[0] == Status.FAIL
    assert run("policy_source_consistent", absent)[0] != Status.FAIL  # the legacy GPO no longer conflicts


def test_a_legacy_category_in_the_local_security_policy_is_in_the_way_too(lab_facts: Facts) -> None:
    facts = with_force(lab_facts("ready"), 0)
    assert facts.policy is not None and facts.policy.legacy_process_tracking is None
    assert legacy_in_the_way(facts) is None  # every host lists undefined categories as 0
    local = facts.model_copy(update={"legacy": LegacyAuditFacts(categories={"AuditProcessTracking": 2})})
    blocking = legacy_in_the_way(local)
    assert blocking is not None and blocking.where == "the local security policy" and blocking.value == 2
    status, detail = run("audit_force_subcategory_policy", local)
    assert status == Status.FAIL and "the local security policy applies" in detail
    assert run("audit_force_subcategory_policy", with_force(local, 1))[0] == Status.PASS
