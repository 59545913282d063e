"""The GPO strategy's domain side over several deploy/rollback cycles, against the lab's directory over real PSRP.

Each rollback must put the domain back exactly as the deployment found it: links (absent or disabled),
Authenticated Users' permission (found by its SID, whatever the DC's language calls it, and absent when it was
absent), and group memberships that were there before. A journal resumes only with its own GPO options, and a
GPO of the same name procaudit did not deploy is not taken over silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from procaudit.lab.directory import AUTHENTICATED_USERS_SID, DEFAULT_GPOS, LabGpo, directory_of, ou_dn
from procaudit.rollout.deploy import Deployment, DeployOptions, GpoOptions, open_journal
from procaudit.rollout.gpo import GpoTakeOverError
from procaudit.rollout.journal import JournalError, JournalStore
from procaudit.rollout.planfile import RolloutPlan, RolloutWave
from procaudit.rollout.rollback import Rollback, RollbackReport
from tests.lab.deploy_helpers import Session, lab_session

pytestmark = pytest.mark.slow

NAME = "procaudit - Process Creation Auditing"
SERVERS = ou_dn("Servers")
WORKSTATIONS = ou_dn("Workstations")
PLAN = RolloutPlan(waves=(RolloutWave(index=1, name="one", hosts=("lab-fresh-2019-01", "lab-ready-01")),))


def gpo_options(session: Session, **changes: object) -> GpoOptions:
    options = GpoOptions(dc=session.targets["lab-dc-01"], ous=(SERVERS, WORKSTATIONS), name=NAME)
    return GpoOptions(**{**options.__dict__, **changes})  # type: ignore[arg-type]


def deploy(session: Session, journal: Path, gpo: GpoOptions, plan: RolloutPlan = PLAN) -> int:
    options = DeployOptions(strategy="gpo", gpo=gpo, verify_timeout=2)
    store = open_journal(journal, plan, options, inventory=None, lab=True)
    return Deployment(plan, session.targets, session.connect, options).run(store).exit_code


def rollback(session: Session, journal: Path) -> int:
    return rollback_report(session, journal).exit_code


def rollback_report(session: Session, journal: Path) -> RollbackReport:
    store = JournalStore.load(journal)
    return Rollback(store, session.targets, session.connect, dc=session.targets["lab-dc-01"]).run()


def ours(session: Session) -> LabGpo:
    directory = directory_of(session.handle.lab.world)
    defaults = {gpo_id for gpo_id, _name, _ou in DEFAULT_GPOS}
    (gpo,) = [g for g in directory.gpos.values() if g.id not in defaults]
    return gpo


def everyone(gpo: LabGpo) -> str | None:
    return next((p.permission for p in gpo.permissions if p.sid == AUTHENTICATED_USERS_SID), None)


def links(session: Session, gpo: LabGpo) -> dict[str, bool]:
    directory = directory_of(session.handle.lab.world)
    return {lk.target: lk.enabled for lk in directory.links if lk.gpo_id == gpo.id}


PROFILES = ["dc", "fresh-2019", "ready"]


def test_deploy_rollback_deploy_rollback_restores_the_domain_each_time(tmp_path: Path) -> None:
    with lab_session(tmp_path, PROFILES) as session:
        journal = tmp_path / "cycles.json"
        gpo = gpo_options(session)
        for cycle in (1, 2):
            assert deploy(session, journal, gpo) == 0, cycle
            assert links(session, ours(session)) == {SERVERS: True, WORKSTATIONS: True}, cycle
            assert everyone(ours(session)) == "GpoRead", cycle
            assert rollback(session, journal) == 0, cycle
            # Without a fresh link record on relink, cycle 2 left the links in place with Authenticated Users
            # back at GpoApply: the GPO applied to every computer in both OUs.
            assert links(session, ours(session)) == {}, cycle
            assert everyone(ours(session)) == "GpoApply", cycle
        assert rollback(session, journal) == 0  # a second rollback changes nothing
        assert links(session, ours(session)) == {}


def test_a_disabled_link_and_a_missing_authenticated_users_come_back_as_they_were(tmp_path: Path) -> None:
    with lab_session(tmp_path, PROFILES) as session:
        gpo = gpo_options(session)
        assert deploy(session, tmp_path / "first.json", gpo) == 0
        assert rollback(session, tmp_path / "first.json") == 0
        directory = directory_of(session.handle.lab.world)
        mine = ours(session)
        # The admin since linked it to Servers, disabled, and took Authenticated Users off (filtering by hand).
        directory.new_link(mine, SERVERS).enabled = False
        directory.set_permission(mine, directory.authenticated_users, "WellKnownGroup", "None", replace=True)
        journal = tmp_path / "second.json"
        assert deploy(session, journal, gpo) == 0
        assert links(session, mine) == {SERVERS: True, WORKSTATIONS: True}
        assert everyone(mine) == "GpoRead"
        assert rollback(session, journal) == 0
        assert links(session, mine) == {SERVERS: False}
        assert everyone(mine) is None


def test_authenticated_users_is_found_by_sid_on_a_localized_dc(tmp_path: Path) -> None:
    with lab_session(tmp_path, PROFILES) as session:
        directory = directory_of(session.handle.lab.world)
        directory.authenticated_users = "Authentifizierte Benutzer"  # a German DC
        journal = tmp_path / "de.json"
        assert deploy(session, journal, gpo_options(session)) == 0
        mine = ours(session)
        assert mine.permission_of("Authentifizierte Benutzer") == "GpoRead"
        stored = JournalStore.load(journal).journal
        assert stored.gpo is not None and stored.gpo.authenticated_users_before == "GpoApply"
        assert rollback(session, journal) == 0
        assert mine.permission_of("Authentifizierte Benutzer") == "GpoApply"


def test_members_that_were_in_the_wave_group_before_stay_in_it(tmp_path: Path) -> None:
    with lab_session(tmp_path, PROFILES) as session:
        directory = directory_of(session.handle.lab.world)
        gpo = gpo_options(session)
        journal = tmp_path / "members.json"
        assert deploy(session, journal, gpo) == 0
        assert rollback(session, journal) == 0
        # Between the cycles an admin put one of the plan's computers (and another one) in the wave group.
        directory.new_group("procaudit-4688-w1", None)
        directory.add_member("procaudit-4688-w1", ["lab-ready-01$", "lab-dc-01$"])
        assert deploy(session, journal, gpo) == 0
        assert directory.groups["procaudit-4688-w1"].members == {
            "lab-ready-01$",
            "lab-dc-01$",
            "lab-fresh-2019-$",
        }  # NetBIOS names: 15 characters
        assert rollback(session, journal) == 0
        assert directory.groups["procaudit-4688-w1"].members == {"lab-ready-01$", "lab-dc-01$"}


def test_a_journal_resumes_only_with_its_own_gpo_options(tmp_path: Path) -> None:
    with lab_session(tmp_path, PROFILES) as session:
        journal = tmp_path / "resume.json"
        assert deploy(session, journal, gpo_options(session)) == 0
        for changes, named in (
            ({"name": "another GPO"}, "--gpo-name"),
            ({"ous": (SERVERS,)}, "--ou"),
            ({"group_prefix": "other"}, "--group-prefix"),
            ({"dc": session.targets["lab-ready-01"]}, "--dc"),
        ):
            with pytest.raises(JournalError, match=named):
                deploy(session, journal, gpo_options(session, **changes))
        assert deploy(session, journal, gpo_options(session)) == 0  # the same options resume


def test_an_existing_gpo_with_other_settings_is_taken_over_only_when_asked(tmp_path: Path) -> None:
    with lab_session(tmp_path, PROFILES) as session:
        assert deploy(session, tmp_path / "theirs.json", gpo_options(session)) == 0
        mine = ours(session)
        version = mine.version
        other = gpo_options(session, include_failure=True)  # other settings under the same name
        with pytest.raises(GpoTakeOverError, match="--take-over-gpo"):
            deploy(session, tmp_path / "new.json", other)
        assert mine.version == version, "the refused run imported"
        journal = tmp_path / "taken.json"
        assert deploy(session, journal, gpo_options(session, include_failure=True, take_over=True)) == 0
        assert mine.version == version + 1
        stored = JournalStore.load(journal).journal
        assert stored.gpo is not None and stored.gpo.took_over
        assert stored.gpo.authenticated_users_before == "GpoRead"  # what the first deployment left
        report = rollback_report(session, journal)
        assert report.exit_code == 0
        # The GPO was linked and filtered before this journal: its rollback leaves all of that in place.
        assert links(session, mine) == {SERVERS: True, WORKSTATIONS: True}
        assert everyone(mine) == "GpoRead"
        # ... and says so: the GPO still applies through the links it had (not "unlinked, nothing applies it").
        said = report.domain[-1]
        assert "existed before the deployment" in said and "links it had before still apply it" in said, said
        assert "not restored" in said and "unlinked" not in said, said


def test_an_existing_gpo_whose_payload_cannot_be_read_is_refused_not_a_crash(tmp_path: Path) -> None:
    with lab_session(tmp_path, PROFILES) as session:
        assert deploy(session, tmp_path / "first.json", gpo_options(session)) == 0
        mine = ours(session)
        # Someone broke the GPO's registry.pol in SYSVOL: procaudit cannot tell its settings.
        assert any(k.lower().endswith("registry.pol") for k in mine.files)
        mine.files = {
            k: b"PReg\x01\x00\x00\x00[garbage" if k.lower().endswith("registry.pol") else v
            for k, v in mine.files.items()
        }
        with pytest.raises(GpoTakeOverError, match="other settings"):
            deploy(session, tmp_path / "second.json", gpo_options(session))


def test_a_resume_after_an_interrupted_import_finishes_the_gpo_it_created(tmp_path: Path) -> None:
    with lab_session(tmp_path, PROFILES) as session:
        journal = tmp_path / "cut.json"
        assert deploy(session, journal, gpo_options(session)) == 0
        mine = ours(session)
        # As if Import-GPO -CreateIfNeeded was cut off after creating the GPO, before its settings and its answer:
        # the journal says procaudit creates it but holds no id, and the GPO's payload is not procaudit's (yet).
        store = JournalStore.load(journal)
        with store.transition() as stored:
            assert stored.gpo is not None and stored.gpo.created
            stored.gpo.gpo_id, stored.gpo.imported, stored.gpo.state = None, False, "pending"
        mine.files = {
            k: b"PReg\x01\x00\x00\x00" if k.lower().endswith("registry.pol") else v for k, v in mine.files.items()
        }
        version = mine.version
        assert deploy(session, journal, gpo_options(session)) == 0  # not refused as someone else's GPO
        resumed = JournalStore.load(journal).journal.gpo
        assert resumed is not None and resumed.gpo_id == mine.id and not resumed.took_over
        assert mine.version == version + 1  # imported again, so its settings are procaudit's
        assert rollback(session, journal) == 0


def test_a_refresh_whose_programs_cannot_start_fails_the_host_and_says_why(tmp_path: Path) -> None:
    with lab_session(tmp_path, PROFILES) as session:
        lab = session.handle.lab
        # AppLocker blocks gpupdate on one host and klist on the other: `&` throws and sets no exit code. Before
        # the fix the refresh read the previous program's exit code (klist's 0) and called gpupdate a success.
        lab.host("lab-ready-01").unlaunchable.add("gpupdate.exe")
        lab.host("lab-fresh-2019-01").unlaunchable.add("klist.exe")
        journal = tmp_path / "blocked.json"
        assert deploy(session, journal, gpo_options(session)) != 0
        hosts = JournalStore.load(journal).journal.hosts
        ready, fresh = hosts["lab-ready-01"], hosts["lab-fresh-2019-01"]
        assert ready.state == "failed" and ready.errors
        assert "gpupdate.exe did not run" in ready.errors[-1].message, ready.errors[-1]
        # klist did not run: the computer's ticket predates its new group, the GPO does not apply yet.
        assert fresh.state == "failed" and fresh.errors
        assert "klist purge did not run" in fresh.errors[-1].message, fresh.errors[-1]
        # Once the programs run again, a rerun of the same journal converges.
        lab.host("lab-ready-01").unlaunchable.clear()
        lab.host("lab-fresh-2019-01").unlaunchable.clear()
        assert deploy(session, journal, gpo_options(session)) == 0


def test_rollback_restores_authenticated_users_without_touching_a_wave_group_it_did_not_create(
    tmp_path: Path,
) -> None:
    with lab_session(tmp_path, PROFILES) as session:
        directory = directory_of(session.handle.lab.world)
        gpo = gpo_options(session)
        assert deploy(session, tmp_path / "first.json", gpo) == 0
        first = rollback_report(session, tmp_path / "first.json")
        assert first.exit_code == 0
        assert "without the links procaudit made" in first.domain[-1], first.domain
        mine = ours(session)
        # An admin made the wave group and gave it GpoApply: the next deployment finds both, creates nothing.
        directory.new_group("procaudit-4688-w1", None)
        directory.set_permission(mine, "procaudit-4688-w1", "Group", "GpoApply", replace=False)
        journal = tmp_path / "second.json"
        assert deploy(session, journal, gpo) == 0
        stored = JournalStore.load(journal).journal
        assert stored.gpo is not None
        assert [(g.created, g.permission_granted) for g in stored.gpo.groups] == [(False, False)]
        assert everyone(mine) == "GpoRead"
        # Since then the admin took the group's GpoApply away. The rollback puts Authenticated Users back and
        # nothing else: before the fix it borrowed the grant mode, which gave the group GpoApply again.
        directory.set_permission(mine, "procaudit-4688-w1", "Group", "None", replace=True)
        assert rollback(session, journal) == 0
        assert everyone(mine) == "GpoApply"
        assert mine.permission_of("procaudit-4688-w1") is None
        assert directory.group("procaudit-4688-w1") is not None


def test_rollback_after_the_wave_group_was_deleted_restores_the_rest_and_says_what_is_left(tmp_path: Path) -> None:
    with lab_session(tmp_path, PROFILES) as session:
        directory = directory_of(session.handle.lab.world)
        journal = tmp_path / "deleted.json"
        assert deploy(session, journal, gpo_options(session)) == 0
        mine = ours(session)
        group_sid = directory.groups["procaudit-4688-w1"].sid
        # An admin deleted the wave group (with its members) before the rollback: its GPO entry is orphaned.
        directory.remove_group("procaudit-4688-w1")
        report = rollback_report(session, journal)
        assert report.exit_code == 0, report
        assert any("no longer exists in AD: its memberships went with it" in step for step in report.domain)
        assert any("may keep an entry for its SID" in step for step in report.domain)
        assert links(session, mine) == {}
        assert everyone(mine) == "GpoApply"
        assert [(p.trustee, p.sid) for p in mine.permissions if p.sid == group_sid] == [("", group_sid)]
        assert all(entry.membership is None for entry in JournalStore.load(journal).journal.hosts.values())
