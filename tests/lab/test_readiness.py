"""procaudit check and verify against the lab over real PSRP: every profile, the wire cost, the marker."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from procaudit.content import content_path
from procaudit.detections.rules import load_rule_file
from procaudit.events import make_event
from procaudit.facts import AUDIT_KEY, CMDLINE_VALUE, FORCE_VALUE, LSA_KEY
from procaudit.inventory import Overrides, load_inventory, to_targets
from procaudit.lab import eventlog
from procaudit.lab.endpoint import EndpointStats
from procaudit.lab.model import PROCESS_CREATION
from procaudit.lab.profiles import PROFILES
from procaudit.readiness.engine import HostStatus, ReadinessReport, check_hosts, exit_code
from procaudit.readiness.evaluators import Status
from procaudit.transport.base import Connector, HostTarget
from procaudit.transport.psrp import PsrpConnector
from procaudit.verify import VerifyStatus, verify
from tests.lab.conftest import LabHandle, start_lab

P, F, W = Status.PASS, Status.FAIL, Status.WARN
CHECKS = (
    "audit_process_creation_success",
    "audit_force_subcategory_policy",
    "cmdline_inclusion_enabled",
    "os_supports_cmdline",
    "security_log_capacity",
    "security_log_retention_mode",
    "security_log_reader_exposure",
    "events_4688_with_cmdline_present",
    "scom_agent_healthy",
    "policy_source_consistent",
)
# What each profile's state means, check by check (columns in CHECKS order), and the host's status.
EXPECTED: dict[str, tuple[HostStatus, tuple[Status, ...]]] = {
    "ready": (HostStatus.READY, (P, P, P, P, P, P, P, P, P, P)),
    # SCENoApplyLegacyAuditPolicy absent: its effective default is Enabled (gpo_audit.md §3.2), so it passes.
    "fresh-2019": (HostStatus.NOT_READY, (F, P, F, P, F, P, P, F, F, P)),
    "cmdline-off": (HostStatus.NOT_READY, (P, P, F, P, P, P, P, F, P, P)),
    "legacy-override": (HostStatus.NOT_READY, (F, F, P, P, W, P, P, F, P, F)),
    "small-log": (HostStatus.NOT_READY, (P, P, P, P, F, P, P, P, P, P)),
    "no-scom-agent": (HostStatus.NOT_READY, (P, P, P, P, P, P, P, P, F, P)),
    "win7-no-kb": (HostStatus.NOT_READY, (P, P, P, F, F, P, P, F, P, P)),
    "readers-exposed": (HostStatus.READY, (P, P, P, P, P, P, W, P, P, P)),
    "gpo-managed": (HostStatus.NOT_READY, (F, P, F, P, W, P, P, F, P, F)),
    "workstation": (HostStatus.NOT_READY, (F, P, F, P, F, P, P, F, P, P)),
    "dc": (HostStatus.NOT_READY, (F, P, F, P, W, P, P, F, P, P)),
    "rds": (HostStatus.NOT_READY, (P, P, P, P, F, P, P, P, P, P)),
    "scom": (HostStatus.NOT_READY, (F, P, F, P, W, P, P, F, P, P)),
}


@dataclass
class Run:
    handle: LabHandle
    targets: list[HostTarget]
    report: ReadinessReport
    stats: dict[str, EndpointStats]

    def connect(self, target: HostTarget) -> Connector:
        return PsrpConnector(target, self.handle.credentials)

    def host(self, name: str):  # type: ignore[no-untyped-def]
        return next(h for h in self.report.hosts if h.host == name)


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    plan = [*PROFILES, "ready"]
    for handle in start_lab(tmp_path_factory.mktemp("readiness-lab"), plan, ["lab-ready-02=refuse"]):
        inventory = load_inventory(handle.inventory)
        targets = to_targets(inventory, inventory.select(None), Overrides(connect_timeout=2))
        run = Run(handle, targets, None, {})  # type: ignore[arg-type]
        for name in handle.lab.hosts:
            handle.endpoint(name).stats.reset()
        run.report = check_hosts(targets, run.connect, workers=8)
        run.stats = {name: EndpointStats(**vars(handle.endpoint(name).stats)) for name in handle.lab.hosts}
        yield run


@pytest.mark.parametrize("profile", sorted(EXPECTED))
def test_each_profile_yields_its_findings(lab_run: Run, profile: str) -> None:
    host = lab_run.host(f"lab-{profile}-01")
    status, expected = EXPECTED[profile]
    got = {f.check_id: f.status for f in host.findings}
    assert {c: got[c] for c in CHECKS} == dict(zip(CHECKS, expected, strict=True)), [
        (f.check_id, f.status.value, f.detail) for f in host.findings
    ]
    assert host.status == status and host.lab is True
    assert host.blocked_by == [c for c, s in zip(CHECKS, expected, strict=True) if s == F]


def test_findings_name_what_to_do(lab_run: Run) -> None:
    gpo = {f.check_id: f for f in lab_run.host("lab-gpo-managed-01").findings}
    assert "GPO 'CORP Server Baseline'" in gpo["policy_source_consistent"].detail
    assert (
        gpo["cmdline_inclusion_enabled"].remediation
        and "Include command line" in gpo["cmdline_inclusion_enabled"].remediation
    )
    legacy = {f.check_id: f for f in lab_run.host("lab-legacy-override-01").findings}
    assert "'CORP Legacy Audit (2008)'" in legacy["audit_force_subcategory_policy"].detail
    win7 = {f.check_id: f for f in lab_run.host("lab-win7-no-kb-01").findings}
    assert "KB3004375" in win7["os_supports_cmdline"].detail


def test_unreachable_host_is_error_and_exit_3(lab_run: Run) -> None:
    host = lab_run.host("lab-ready-02")
    assert host.status == HostStatus.ERROR and host.error is not None and host.error.kind == "unreachable"
    assert host.findings == []
    summary = lab_run.report.summary
    assert (summary.total, summary.ready, summary.error) == (14, 2, 1)
    assert summary.errors_by_kind == {"unreachable": 1}
    assert summary.text.startswith("2 of 14 hosts ready; ") and summary.text.endswith("; 1 unreachable")
    assert exit_code(lab_run.report) == 3


def test_one_script_run_per_host_within_64_kib(lab_run: Run) -> None:
    for name, stats in lab_run.stats.items():
        if name == "lab-ready-02":
            continue  # refused: nothing crossed the wire
        assert stats.pipelines == 1, name
        assert stats.bytes_in + stats.bytes_out <= 64 * 1024, (name, stats)


def test_verify_models_the_marker_truthfully(lab_run: Run) -> None:
    names = ["lab-ready-01", "lab-fresh-2019-01", "lab-cmdline-off-01", "lab-win7-no-kb-01", "lab-ready-02"]
    targets = [t for t in lab_run.targets if t.name in names]
    report = verify(targets, lab_run.connect, timeout_seconds=1)
    by_host = {h.host: h for h in report.hosts}
    assert (by_host["lab-ready-01"].status, by_host["lab-ready-01"].reason) == (VerifyStatus.PASS, "logged")
    assert by_host["lab-ready-01"].latency_ms is not None
    assert by_host["lab-fresh-2019-01"].reason == "no_event" and by_host["lab-fresh-2019-01"].status == "FAIL"
    assert by_host["lab-cmdline-off-01"].reason == "no_command_line"
    assert by_host["lab-win7-no-kb-01"].reason == "no_command_line"
    assert by_host["lab-win7-no-kb-01"].event is not None and by_host["lab-win7-no-kb-01"].event.command_line is None
    assert (by_host["lab-ready-02"].status, by_host["lab-ready-02"].reason) == (VerifyStatus.ERROR, "unreachable")
    shown = by_host["lab-ready-01"].event
    assert shown is not None and shown.command_line is not None and shown.command_line.startswith("[redacted")
    assert (
        report.summary.text
        == "1 of 5 hosts log 4688 with the command line; 2 no command line; 1 no event; 1 unreachable"
    )


def test_verify_passes_after_enabling_in_the_lab(lab_run: Run) -> None:
    host = lab_run.handle.lab.host("lab-fresh-2019-01")
    with host.lock:  # what a deployment does: local advanced policy, force flag, command-line value, refresh
        host.policy.local_advanced[PROCESS_CREATION] = 1
        host.registry[LSA_KEY][FORCE_VALUE] = 1
        host.registry[AUDIT_KEY][CMDLINE_VALUE] = 1
        host.refresh_policy()
        eventlog.note_state_change(host)
    target = [t for t in lab_run.targets if t.name == "lab-fresh-2019-01"]
    proof = verify(target, lab_run.connect, timeout_seconds=1, show_command_lines=True)
    assert proof.hosts[0].status == VerifyStatus.PASS
    event = proof.hosts[0].event
    assert event is not None and event.command_line is not None
    assert re.fullmatch(
        r'"C:\\Windows\\system32\\cmd\.exe" /d /c rem procaudit-verify-[0-9a-f]{32}', event.command_line
    )
    # The detection canary rule (shipped in detections/) fires on exactly this event.
    canary = load_rule_file(content_path("detections", "procaudit_verify_canary.yaml"))
    marker = host.events[-1]
    assert canary.predicate(make_event(dict(marker.fields), event_version=host.event_version()))
    after = check_hosts(target, lab_run.connect)
    findings = {f.check_id: f.status for f in after.hosts[0].findings}
    assert findings["audit_process_creation_success"] == P and findings["cmdline_inclusion_enabled"] == P
    assert findings["events_4688_with_cmdline_present"] == P  # the marker's own 4688 is in the window
