"""procaudit deploy and rollback end to end against the lab, over real PSRP: every profile, both strategies.

plan -> deploy --check -> deploy -> check (the checks deploy addresses PASS) and verify (the marker's 4688 with
its command line) -> a second deploy changes nothing -> rollback -> every value deploy may change equals the
original, per profile -> a second rollback does nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from procaudit.lab.directory import AUTHENTICATED_USERS, DEFAULT_GPOS, directory_of
from procaudit.lab.profiles import PROFILES
from procaudit.readiness.engine import check_hosts
from procaudit.readiness.evaluators import Status
from procaudit.rollout.deploy import Deployment, DeployOptions, GpoOptions, open_journal
from procaudit.rollout.journal import JournalStore
from procaudit.rollout.planfile import RolloutPlan, RolloutWave
from procaudit.rollout.rollback import Rollback
from tests.lab.deploy_helpers import Session, lab_session, lost_before_values, settings_of, unknown_hosts

pytestmark = pytest.mark.slow

MB = 1024 * 1024
ALL = list(PROFILES)
# The checks deploy is responsible for: they must PASS on every host it did not refuse.
DEPLOY_CHECKS = (
    "audit_process_creation_success",
    "audit_force_subcategory_policy",
    "cmdline_inclusion_enabled",
    "policy_source_consistent",
)
OUS = (
    "OU=Servers,DC=corp,DC=example",
    "OU=Workstations,DC=corp,DC=example",
    "OU=Domain Controllers,DC=corp,DC=example",
)


def three_waves(names: list[str], log_sizes: dict[str, int] | None = None) -> RolloutPlan:
    ordered = sorted(names)
    return RolloutPlan(
        waves=(
            RolloutWave(index=1, name="canary", hosts=(ordered[0],)),
            RolloutWave(index=2, name="wave-02", hosts=tuple(ordered[1:6]), max_fail_percent=40),
            RolloutWave(index=3, name="wave-03", hosts=tuple(ordered[6:]), max_fail_percent=40),
        ),
        log_sizes=log_sizes or {},
    )


def deployment(session: Session, plan: RolloutPlan, **options: object) -> Deployment:
    return Deployment(plan, session.targets, session.connect, DeployOptions(verify_timeout=2, **options))  # type: ignore[arg-type]


def assert_checks_pass(session: Session, hosts: list[str]) -> None:
    report = check_hosts([session.targets[h] for h in hosts], session.connect)
    for host in report.hosts:
        found = {f.check_id: f for f in host.findings}
        for check_id in DEPLOY_CHECKS:
            assert found[check_id].status == Status.PASS, (host.host, check_id, found[check_id].detail)


def test_direct_deployment_end_to_end_on_every_profile(tmp_path: Path) -> None:
    with lab_session(tmp_path, ALL) as session:
        names = sorted(session.targets)
        originals = {h: settings_of(f) for h, f in session.facts().items()}
        small_log = "lab-small-log-01"
        plan = three_waves(names, {small_log: 256 * MB})
        deploy = deployment(session, plan)

        predicted = {h.host: h for h in deploy.predict().hosts}
        assert predicted["lab-gpo-managed-01"].status == "REFUSED"
        assert {r.gpo for r in predicted["lab-gpo-managed-01"].refused} == {"CORP Server Baseline"}
        assert predicted["lab-ready-01"].status == "OK" and not predicted["lab-ready-01"].changes
        assert [c.after for c in predicted[small_log].changes] == [256 * MB]
        assert settings_of(session.facts([small_log])[small_log]) == originals[small_log], "--check changed a host"

        journal = tmp_path / "deploy.journal.json"
        report = deploy.run(open_journal(journal, plan, deploy.options, inventory=None, lab=True))
        by_host = {h.host: h for h in report.hosts}
        assert report.exit_code == 1, report.summary  # the refused host: a pending change not made
        assert {h for h, r in by_host.items() if r.status != "OK"} == {"lab-gpo-managed-01"}
        assert by_host["lab-win7-no-kb-01"].verify is not None
        assert by_host["lab-win7-no-kb-01"].verify.status == "EXPECTED_FAIL"
        for host, result in by_host.items():
            if host not in ("lab-gpo-managed-01", "lab-win7-no-kb-01"):
                assert result.verify is not None and result.verify.status == "PASS", (host, result.verify)
        assert all(w.state == "passed" for w in report.waves)
        deployed = [h for h in names if h != "lab-gpo-managed-01"]
        assert_checks_pass(session, deployed)
        after = {h: settings_of(f) for h, f in session.facts().items()}
        assert after[small_log]["security_log:max_size"] == 256 * MB
        stored = JournalStore.load(journal).journal
        assert not unknown_hosts(stored) and not lost_before_values(stored, originals, after)

        again = deployment(session, plan).run(
            open_journal(tmp_path / "second.json", plan, deploy.options, inventory=None, lab=True)
        )
        assert all(not h.changes for h in again.hosts), [h.host for h in again.hosts if h.changes]
        assert {h: settings_of(f) for h, f in session.facts().items()} == after
        resumed = deployment(session, plan).run(JournalStore.load(journal))
        assert [w.state for w in resumed.waves] == ["passed"] * 3

        rollback = Rollback(JournalStore.load(journal), session.targets, session.connect).run()
        assert rollback.exit_code == 0, rollback.summary
        restored = {h: settings_of(f) for h, f in session.facts().items()}
        for host in names:
            assert restored[host] == originals[host], host
        second = Rollback(JournalStore.load(journal), session.targets, session.connect).run()
        assert {h.status for h in second.hosts} <= {"NOTHING_TO_DO", "SKIPPED"}


def test_gpo_deployment_end_to_end_on_every_profile(tmp_path: Path) -> None:
    with lab_session(tmp_path, ALL) as session:
        names = sorted(session.targets)
        originals = {h: settings_of(f) for h, f in session.facts().items()}
        plan = three_waves(names)
        gpo = GpoOptions(dc=session.targets["lab-dc-01"], ous=OUS, name="procaudit - Process Creation Auditing")
        deploy = deployment(session, plan, strategy="gpo", gpo=gpo)
        directory = directory_of(session.handle.lab.world)

        check = deploy.predict()
        assert all(step.needed for step in check.domain)
        defaults = {gpo_id for gpo_id, _name, _ou in DEFAULT_GPOS}
        assert set(directory.gpos) == defaults, "--check imported a GPO"

        journal = tmp_path / "gpo.journal.json"
        report = deploy.run(open_journal(journal, plan, deploy.options, inventory=None, lab=True))
        assert report.exit_code == 0, report.summary
        by_host = {h.host: h for h in report.hosts}
        assert all(h.status == "OK" for h in report.hosts), {h.host: (h.status, h.error) for h in report.hosts}
        assert by_host["lab-gpo-managed-01"].notes  # the baseline GPO sets the same settings
        (ours,) = [g for g in directory.gpos.values() if g.id not in defaults]
        assert ours.permission_of(AUTHENTICATED_USERS) == "GpoRead"  # MS16-072: Read kept, Apply removed
        assert {ours.permission_of(f"procaudit-4688-w{i}") for i in (1, 2, 3)} == {"GpoApply"}
        assert sorted(lk.target for lk in directory.links if lk.gpo_id == ours.id) == sorted(OUS)
        assert sum(len(g.members) for g in directory.groups.values()) == len(names)
        assert_checks_pass(session, names)
        facts = session.facts()
        for host, f in facts.items():
            assert f.policy is not None and f.policy.process_creation is not None
            assert f.policy.process_creation.gpo_name == ours.display_name, host
        after = {h: settings_of(f) for h, f in facts.items()}
        stored = JournalStore.load(journal).journal
        assert not unknown_hosts(stored) and not lost_before_values(stored, originals, after)

        again = deployment(session, plan, strategy="gpo", gpo=gpo).run(
            open_journal(tmp_path / "second.json", plan, deploy.options, inventory=None, lab=True)
        )
        assert all(not h.changes for h in again.hosts) and ours.version == 1, "a second deployment changed something"

        rollback = Rollback(
            JournalStore.load(journal), session.targets, session.connect, dc=session.targets["lab-dc-01"]
        ).run()
        assert rollback.exit_code == 0, rollback.summary
        assert {lk.gpo_id for lk in directory.links} == defaults  # only the domain's own links are left
        assert not any(g.startswith("procaudit") for g in directory.groups)
        assert ours.permission_of(AUTHENTICATED_USERS) == "GpoApply"
        restored = {h: settings_of(f) for h, f in session.facts().items()}
        for host in names:
            assert restored[host] == originals[host], host
        # The advanced audit policy stayed in LSA when the GPO stopped applying: rollback restored it directly.
        tattooed = [h for h in rollback.hosts if any(k.startswith("audit:") for k in h.restored)]
        assert tattooed and all(any("stay in force" in n for n in h.notes) for h in tattooed)


def test_a_gate_stops_before_the_next_wave_and_says_why(tmp_path: Path) -> None:
    with lab_session(tmp_path, ["fresh-2019", "workstation", "dc", "cmdline-off"], ["lab-dc-01=down"]) as session:
        originals = {h: settings_of(f) for h, f in session.facts(["lab-cmdline-off-01", "lab-workstation-01"]).items()}
        plan = RolloutPlan(
            waves=(
                RolloutWave(index=1, name="canary", hosts=("lab-dc-01", "lab-fresh-2019-01"), max_fail_percent=49),
                RolloutWave(index=2, name="rest", hosts=("lab-cmdline-off-01", "lab-workstation-01")),
            )
        )
        deploy = Deployment(
            plan,
            session.targets,
            session.connect,
            DeployOptions(verify_timeout=2),
        )
        journal = tmp_path / "gate.json"
        report = deploy.run(open_journal(journal, plan, deploy.options, inventory=None, lab=True))
        assert report.exit_code == 4
        assert report.stopped is not None and report.stopped_wave == 1
        assert "1 of 2 host(s) failed, more than the 49%" in report.stopped.reason
        assert {h.host: h.status for h in report.hosts if h.wave == 2} == {
            "lab-cmdline-off-01": "SKIPPED",
            "lab-workstation-01": "SKIPPED",
        }
        now = {h: settings_of(f) for h, f in session.facts(list(originals)).items()}
        assert now == originals, "a host of the next wave was changed after the gate stopped"
        # Ansible semantics: 1 of 2 failing is 50%; a gate of 50% must be EXCEEDED to stop.
        relaxed = plan.model_copy(
            update={"waves": (plan.waves[0].model_copy(update={"max_fail_percent": 50}), plan.waves[1])}
        )
        second = Deployment(relaxed, session.targets, session.connect, DeployOptions(verify_timeout=2)).run(
            open_journal(tmp_path / "relaxed.json", relaxed, DeployOptions(), inventory=None, lab=True)
        )
        assert second.stopped is None and second.exit_code == 3
        assert {h.host: h.status for h in second.hosts}["lab-workstation-01"] == "OK"
