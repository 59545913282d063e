"""facts_from_probe on a probe document assembled from real Windows captures, and on broken raw material."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from procaudit.facts import (
    AUDIT_KEY,
    CMDLINE_VALUE,
    FORCE_VALUE,
    LSA_KEY,
    ProbeResult,
    facts_from_probe,
)
from procaudit.lab.wintext import trim_rsop
from procaudit.parsers.osinfo import CmdlineSupport

Capture = Callable[[str], Path]


def probe_document(**parts: Any) -> dict[str, Any]:
    """A probe document with every part empty; tests fill in what they exercise."""
    document: dict[str, Any] = {
        "ComputerName": "HOST1",
        "CollectedAt": "2026-03-02T10:00:00.1234567Z",
        "PSVersion": "5.1.17763.592",
        "OS": {
            "Caption": "Microsoft Windows Server 2019 Standard",
            "Version": "10.0.17763",
            "BuildNumber": "17763",
            "ProductType": 3,
        },
        "HotFixIds": None,
        "AuditPolicyCsv": None,
        "SecurityTemplate": None,
        "Registry": [],
        "SecurityChannel": None,
        "SecurityLog": None,
        "EventLogReaders": None,
        "Events4688": None,
        "HealthService": None,
        "ManagementGroups": [],
        "GpResultXml": None,
        "Errors": {},
    }
    document.update(parts)
    return document


def test_real_captures_become_facts(windows_capture: Capture) -> None:
    csv = windows_capture("01_auditpol/auditpol_backup_simeononsecurity_DESKTOPTEMPLATE.csv").read_text()
    channel = windows_capture("03_wevtutil_security_channel/wevtutil_gl_security_dc_lowercase_name_128MB.txt")
    rsop = windows_capture("02_gpresult_xml/gpresult_x_rsop_full_dc1_testdomain_2019_sergueik.xml").read_text()
    raw = ProbeResult.model_validate(
        probe_document(
            AuditPolicyCsv=csv,
            SecurityChannel=channel.read_text(),
            GpResultXml=trim_rsop(rsop, ["Include command line in process creation events"]),
            Registry=[
                {"Key": AUDIT_KEY, "Name": CMDLINE_VALUE, "Value": 1, "Kind": "DWord"},
                {"Key": LSA_KEY, "Name": FORCE_VALUE, "Value": None, "Kind": None},
            ],
            SecurityLog={
                "FileSize": 134217728,
                "RecordCount": 150000,
                "MaximumSizeInBytes": 134217728,
                "LogMode": "Circular",
                "IsLogFull": False,
                "OldestRecordTime": "2026-02-20T10:00:00.0000000Z",
            },
        )
    )
    facts = facts_from_probe(raw, "inventory-name")
    assert facts.problems == {}
    assert facts.host == "inventory-name" and facts.computer_name == "HOST1"
    assert facts.audit is not None and len(facts.audit.settings) == 59
    assert facts.audit.process_creation == 3 and facts.audit.process_creation_success
    assert facts.registry.cmdline_enabled == 1 and facts.registry.force_subcategory is None
    assert facts.security_log is not None
    assert (facts.security_log.max_size, facts.security_log.log_mode) == (128 * 1024 * 1024, "Circular")
    assert facts.readers is not None and facts.readers.extra_channel_readers == ()
    assert facts.readers.event_log_readers is None  # not collected: unknown, not "no members"
    # The real DC RSoP sets none of our settings.
    assert facts.policy is not None and facts.policy.process_creation is None and facts.policy.cmdline is None
    assert facts.policy.gpo_names == {}  # the probe keeps only GPOs that set what procaudit reads
    assert facts.os is not None and facts.os.cmdline_support == CmdlineSupport.SUPPORTED
    assert facts.collected_at.microsecond == 123456


def test_win7_hotfixes_decide_cmdline_support() -> None:
    os = {"Caption": "Microsoft Windows 7 Enterprise", "Version": "6.1.7601", "BuildNumber": "7601", "ProductType": 1}
    without = facts_from_probe(ProbeResult.model_validate(probe_document(OS=os, HotFixIds=["KB976902"])))
    with_kb = facts_from_probe(ProbeResult.model_validate(probe_document(OS=os, HotFixIds=["KB3004375"])))
    assert without.os is not None and without.os.cmdline_support == CmdlineSupport.NEEDS_UPDATE
    assert with_kb.os is not None and with_kb.os.cmdline_support == CmdlineSupport.SUPPORTED


def test_probe_errors_and_parse_errors_become_problems_not_exceptions() -> None:
    raw = ProbeResult.model_validate(
        probe_document(
            AuditPolicyCsv="Machine Name,Policy Target\nthis is not,an audit row\n",
            GpResultXml="gpresult said something that is not XML",
            Errors={"SecurityLog": "Attempted to perform an unauthorized operation.", "Events4688": "access denied"},
        )
    )
    facts = facts_from_probe(raw)
    assert facts.audit is None and "auditpol /backup" in facts.problems["audit"]
    assert facts.policy is None and "not XML" in facts.problems["policy"]
    assert facts.security_log is None and "unauthorized" in facts.problems["security_log"]
    assert facts.events_4688 is None and facts.problems["events_4688"] == "access denied"


def test_event_counts_are_bounded_and_shared() -> None:
    raw = ProbeResult.model_validate(
        probe_document(
            Events4688={
                "WindowHours": 24,
                "MaxEvents": 100,
                "Sampled": 100,
                "WithCommandLine": 75,
                "NewestTime": "2026-03-02T09:59:00.0000000Z",
                "OldestTime": "2026-03-02T09:00:00.0000000Z",
            }
        )
    )
    events = facts_from_probe(raw).events_4688
    assert events is not None and events.truncated and events.command_line_share == 0.75
