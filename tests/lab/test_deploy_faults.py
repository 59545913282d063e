"""Fault injection during deploy: hosts that cannot be reached, and faults injected while a change is in flight.

Every scenario counts the two things that must stay at zero once the faults are gone: hosts left in an
unknown state, and before-values lost (a changed setting whose original value the journal does not hold).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from procaudit.inventory import Overrides
from procaudit.lab.faults import Fault
from procaudit.rollout.deploy import Deployment, DeployOptions, open_journal
from procaudit.rollout.journal import Journal, JournalStore
from procaudit.rollout.planfile import RolloutPlan, RolloutWave
from procaudit.rollout.rollback import Rollback
from tests.lab.deploy_helpers import (
    JournalWatch,
    Session,
    lab_session,
    load,
    lost_before_values,
    settings_of,
    unknown_hosts,
)

pytestmark = pytest.mark.slow

FAST = Overrides(connect_timeout=1.0, script_timeout=4.0)


def one_wave(names: list[str]) -> RolloutPlan:
    return RolloutPlan(waves=(RolloutWave(index=1, name="all", hosts=tuple(sorted(names)), max_fail_percent=100),))


def run(session: Session, plan: RolloutPlan, journal: Path):  # type: ignore[no-untyped-def]
    options = DeployOptions(verify_timeout=2)
    deployment = Deployment(plan, session.targets, session.connect, options)
    store = (
        JournalStore.load(journal)
        if journal.exists()
        else open_journal(journal, plan, options, inventory=None, lab=True)
    )
    return deployment.run(store)


def test_unreachable_hosts_fail_before_any_change_and_lose_nothing(tmp_path: Path) -> None:
    faults = ["lab-dc-01=down", "lab-rds-01=refuse", "lab-workstation-01=auth-fail", "lab-cmdline-off-01=hang"]
    faults.append("lab-small-log-01=drop")
    profiles = ["fresh-2019", "dc", "rds", "workstation", "cmdline-off", "small-log"]
    with lab_session(tmp_path, profiles, faults, FAST) as session:
        models = {name: rt.host for name, rt in session.handle.lab.hosts.items()}
        before = {name: (dict(h.policy.lsa), {k: dict(v) for k, v in h.registry.items()}) for name, h in models.items()}
        journal = tmp_path / "j.json"
        report = run(session, one_wave(list(session.targets)), journal)
        kinds = {h.host: (h.status, h.error.kind if h.error else None) for h in report.hosts}
        assert kinds == {
            "lab-fresh-2019-01": ("OK", None),
            "lab-dc-01": ("ERROR", "unreachable"),
            "lab-rds-01": ("ERROR", "unreachable"),
            "lab-workstation-01": ("ERROR", "auth"),
            "lab-cmdline-off-01": ("ERROR", "timeout"),
            "lab-small-log-01": ("ERROR", "dropped"),
        }
        assert report.exit_code == 3
        stored = load(journal)
        assert not unknown_hosts(stored)
        for name in faults_hosts(faults):
            entry = stored.hosts[name]
            assert entry.state == "failed" and entry.outcome_known and not entry.before
            assert (dict(models[name].policy.lsa), {k: dict(v) for k, v in models[name].registry.items()}) == before[
                name
            ]


def faults_hosts(faults: list[str]) -> list[str]:
    return [f.partition("=")[0] for f in faults]


def _inject_when_applying(session: Session, host: str, fault: Fault) -> JournalWatch:
    endpoint = session.handle.endpoint(host)

    def applying(journal: Journal) -> bool:
        return journal.hosts[host].state == "applying"

    return JournalWatch(Path(session.journal), applying, lambda _j: endpoint.faults.append(fault))  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["drop", "hang"])
def test_a_fault_while_the_change_is_in_flight_is_resolved_by_the_next_run(tmp_path: Path, kind: str) -> None:
    host = "lab-fresh-2019-01"
    with lab_session(tmp_path, ["fresh-2019", "ready"], [f"{host}=slow:120"], FAST) as session:
        originals = {h: settings_of(f) for h, f in session.facts().items()}
        journal = tmp_path / "j.json"
        session.journal = journal  # type: ignore[attr-defined]
        plan = one_wave(list(session.targets))
        endpoint = session.handle.endpoint(host)
        with _inject_when_applying(session, host, Fault(kind)) as watch:  # type: ignore[arg-type]
            first = run(session, plan, journal)
        assert watch.fired.is_set()
        entry = load(journal).hosts[host]
        assert entry.state == "failed" and not entry.outcome_known  # the re-read failed too: honest 'not known'
        assert {e.state for e in entry.errors} == {"applying"}
        assert unknown_hosts(load(journal)) == [host] and first.exit_code == 3
        endpoint.faults[:] = [f for f in endpoint.faults if f.kind != kind]
        landed = settings_of(session.facts([host])[host]) != originals[host]
        assert landed == (kind == "drop")  # a dropped answer: the script ran; a hang: it never started

        second = run(session, plan, journal)
        stored = load(journal)
        assert second.exit_code == 0, second.summary
        assert not unknown_hosts(stored)
        now = {h: settings_of(f) for h, f in session.facts().items()}
        assert not lost_before_values(stored, originals, now)
        assert stored.hosts[host].attempts == 2
        Rollback(JournalStore.load(journal), session.targets, session.connect).run()
        assert {h: settings_of(f) for h, f in session.facts().items()} == originals


def test_a_lost_answer_is_settled_by_re_reading_the_host_in_the_same_run(tmp_path: Path) -> None:
    host = "lab-fresh-2019-01"
    with lab_session(tmp_path, ["fresh-2019"], [f"{host}=slow:150"], FAST) as session:
        originals = {h: settings_of(f) for h, f in session.facts().items()}
        journal = tmp_path / "j.json"
        endpoint = session.handle.endpoint(host)

        def applying(j: Journal) -> bool:
            return j.hosts[host].state == "applying"

        def lost(j: Journal) -> bool:
            return bool(j.hosts[host].errors)

        drop = Fault("drop")
        with (
            JournalWatch(journal, applying, lambda _j: endpoint.faults.append(drop)),
            JournalWatch(journal, lost, lambda _j: endpoint.faults.remove(drop)),
        ):
            report = run(session, one_wave([host]), journal)
        entry = load(journal).hosts[host]
        assert report.exit_code == 0 and entry.state == "verified" and entry.errors[0].kind == "dropped"
        assert any("answer was lost" in n for n in entry.notes)
        now = {h: settings_of(f) for h, f in session.facts().items()}
        assert not lost_before_values(load(journal), originals, now) and not unknown_hosts(load(journal))
