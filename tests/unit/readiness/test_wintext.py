"""The lab's Windows texts go through the real parsers, and the modelled probe trimming keeps what matters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lxml import etree

from procaudit.facts import DEFAULT_POLICY_NAMES
from procaudit.lab import wintext
from procaudit.lab.profiles import CORP_BASELINE_GPO, build_host
from procaudit.parsers.auditpol import PROCESS_CREATION_GUID, SUBCATEGORIES, parse_audit_csv
from procaudit.parsers.gpresult import parse_policy_xml
from procaudit.parsers.secedit import parse_security_template
from procaudit.parsers.wevtutil import parse_wevtutil_gl

Capture = Callable[[str], Path]


def test_auditpol_backup_has_every_subcategory_with_the_effective_value() -> None:
    host = build_host("legacy-override", "h1")
    parsed = parse_audit_csv(wintext.auditpol_backup(host))
    assert set(parsed.subcategories) == set(SUBCATEGORIES)
    assert parsed.setting(PROCESS_CREATION_GUID) == host.policy.lsa[PROCESS_CREATION_GUID] == 0
    assert parsed.options["CrashOnAuditFail"].enabled is False


def test_secedit_trim_keeps_only_event_audit() -> None:
    host = build_host("legacy-override", "h1")
    full = parse_security_template(wintext.secedit_export(host))
    trimmed = parse_security_template(wintext.trim_security_template(wintext.secedit_export(host)))
    assert full.has_section("Privilege Rights") and not trimmed.has_section("Privilege Rights")
    assert trimmed.event_audit()["AuditProcessTracking"] == 0 and len(trimmed.event_audit()) == 9


def test_wevtutil_text_round_trips() -> None:
    host = build_host("readers-exposed", "h1")
    host.security_log.retention = "retain"
    config = parse_wevtutil_gl(wintext.wevtutil_gl_security(host))
    assert config.max_size == host.security_log.max_size and config.log_mode == "Retain"
    assert config.channel_access == host.security_log.channel_sddl


def test_trimming_the_real_rsop_drops_everything_procaudit_does_not_read(windows_capture: Capture) -> None:
    path = windows_capture("02_gpresult_xml/gpresult_x_rsop_full_dc1_testdomain_2019_sergueik.xml")
    text = path.read_text()
    trimmed = wintext.trim_rsop(text, list(DEFAULT_POLICY_NAMES))
    assert len(trimmed) < len(text) / 10
    before, after = parse_policy_xml(text), parse_policy_xml(trimmed)
    # This DC's GPOs set none of our settings: nothing of them is left, not even their names.
    assert before.gpo_names and before.security_options and before.registry_policies
    assert not after.repaired and after.gpo_names == {} and after.security_options == ()
    root = etree.fromstring(trimmed.partition("?>")[2].encode())
    assert not root.xpath("//*[local-name()='UserResults' or local-name()='SecurityGroup' or local-name()='Link']")


def test_gpo_managed_rsop_names_the_baseline_for_both_settings() -> None:
    host = build_host("gpo-managed", "h1")
    sources = parse_policy_xml(wintext.trim_rsop(wintext.gpresult_rsop(host), list(DEFAULT_POLICY_NAMES)))
    pc = sources.process_creation()
    cmd = sources.cmdline_setting()
    assert pc is not None and pc.setting_value == 0 and pc.gpo.name == "CORP Server Baseline"
    assert cmd is not None and cmd.enabled is False and cmd.via == "admx_policy"
    assert [p.name for p in sources.registry_policies] == ["Include command line in process creation events"]
    assert all(a.guid == PROCESS_CREATION_GUID for a in sources.audit_settings)  # termination was trimmed
    assert sources.gpo_names == {CORP_BASELINE_GPO[0]: "CORP Server Baseline"}
