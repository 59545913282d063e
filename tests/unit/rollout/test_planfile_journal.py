"""The plan file mapping (procaudit plan's JSON and hand-written plans) and the journal's guarantees."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings

from procaudit.rollout.deploy import DeployOptions, open_journal
from procaudit.rollout.journal import GpoEntry, GpoLinkRecord, HostEntry, JournalError, JournalStore
from procaudit.rollout.plan import PlanSettings, build_plan
from procaudit.rollout.planfile import PlanFileError, RolloutPlan, RolloutWave, load_rollout_plan, plan_from_document
from tests.unit.rollout.strategies import estates, host, report_of


def _plan_json(tmp_path: Path, hosts, config: PlanSettings) -> Path:  # type: ignore[no-untyped-def]
    plan = build_plan(report_of(hosts), [(h.host, h.group) for h in hosts], config, estimate_sha256="0" * 64)
    path = tmp_path / "plan.json"
    path.write_text(plan.to_json())
    return path


def test_procaudit_plan_json_maps_to_waves_gates_and_log_sizes(tmp_path: Path) -> None:
    hosts = [host(f"srv{i}", "servers", per_day=1000 * (i + 1), change=(i + 1) * 64 * 1024 * 1024) for i in range(5)]
    hosts.append(host("dc01", "dcs", "dc", 9000))
    config = PlanSettings(canary="1", max_events_per_sec=0.2, max_hosts=2, soak_seconds=600, max_fail_percent=25)
    path = _plan_json(tmp_path, hosts, config)
    document = json.loads(path.read_text())
    plan = load_rollout_plan(path)
    assert [w.hosts for w in plan.waves] == [tuple(w["hosts"]) for w in document["waves"]]
    assert [w.index for w in plan.waves] == list(range(1, len(document["waves"]) + 1))
    assert all(w.soak_seconds == 600 and w.max_fail_percent == 25 for w in plan.waves)
    assert plan.log_sizes == {f"srv{i}": (i + 1) * 64 * 1024 * 1024 for i in range(5)}
    assert plan.sha256 and len(plan.sha256) == 64 and plan.digest() == plan.sha256


@settings(max_examples=60, deadline=None)
@given(hosts=estates())
def test_every_planned_host_is_deployed_once_in_plan_order(hosts) -> None:  # type: ignore[no-untyped-def]
    plan = build_plan(report_of(hosts), [(h.host, h.group) for h in hosts], PlanSettings(), estimate_sha256="0" * 64)
    rollout = plan_from_document(json.loads(plan.to_json()))
    assert rollout.hosts == [h for w in plan.waves for h in w.hosts]
    assert sorted(rollout.hosts) == sorted(h.host for h in hosts)
    wanted = {h.host: h.log_size_change.requested_max_size for h in plan.hosts if h.log_size_change is not None}
    assert rollout.log_sizes == wanted


def test_hand_written_plans_are_read_tolerantly() -> None:
    plan = plan_from_document(
        {
            "waves": [
                {"index": 2, "hosts": [{"host": "b"}], "soak": "30m", "max_fail_percent": 50},
                {"index": 1, "name": "pilot", "hosts": ["a"]},
            ],
            "hosts": [{"name": "b", "requested_max_size": 256 * 1024 * 1024}],
        }
    )
    assert [(w.index, w.name, w.hosts, w.soak_seconds) for w in plan.waves] == [
        (1, "pilot", ("a",), 0.0),
        (2, "wave-02", ("b",), 1800.0),
    ]
    assert plan.log_sizes == {"b": 256 * 1024 * 1024}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "'waves' must be a non-empty list"),
        ({"waves": [{"hosts": ["a"]}, {"hosts": ["a"]}]}, "host 'a' is also in"),
        ({"waves": [{"hosts": ["a"], "max_fail_percent": 150}]}, "max_fail_percent"),
        ({"waves": [{"hosts": ["a"], "soak": "soon"}]}, "soak"),
        ({"waves": [{"hosts": [""]}]}, "non-empty name"),
        ({"waves": [{"index": 1, "hosts": ["a"]}, {"index": 1, "hosts": ["b"]}]}, "same index"),
        ({"waves": [{"hosts": ["a"]}], "hosts": [{"host": "z", "requested_max_size": 1}]}, "in no wave"),
        ({"waves": [{"hosts": ["a"]}], "hosts": [{"host": "a", "requested_max_size": "big"}]}, "positive number"),
    ],
)
def test_bad_plans_are_one_line_user_errors(document: object, message: str) -> None:
    with pytest.raises(PlanFileError, match=message) as info:
        plan_from_document(document)
    assert "\n" not in str(info.value)


def test_a_file_that_is_not_json_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text("waves: [a]\n")
    with pytest.raises(PlanFileError, match="not a JSON document"):
        load_rollout_plan(path)
    with pytest.raises(PlanFileError, match="No such file"):
        load_rollout_plan(tmp_path / "missing.json")


def test_the_gate_stops_only_when_failures_exceed_the_share() -> None:
    wave = RolloutWave(index=1, name="w", hosts=("a", "b", "c", "d"), max_fail_percent=25)
    assert not wave.should_stop(1) and wave.should_stop(2)
    strict = RolloutWave(index=1, name="w", hosts=("a",), max_fail_percent=0)
    assert not strict.should_stop(0) and strict.should_stop(1)
    assert not RolloutWave(index=1, name="w", hosts=("a",), max_fail_percent=100).should_stop(1)


PLAN = RolloutPlan(waves=(RolloutWave(index=1, name="w", hosts=("a", "b")),))


def test_journal_is_private_atomic_and_keeps_the_first_before_values(tmp_path: Path) -> None:
    path = tmp_path / "deploy.journal.json"
    store = open_journal(path, PLAN, DeployOptions(), inventory=None, lab=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.host("a", lambda e: e.record_before({"registry:X": None, "audit:G": 0}))
    store.host("a", lambda e: e.record_before({"registry:X": 1, "audit:G": 1, "audit:H": 2}))
    reread = JournalStore.load(path).journal.hosts["a"]
    assert reread.before == {"registry:X": None, "audit:G": 0, "audit:H": 2}
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"


def test_a_journal_belongs_to_one_plan_and_strategy(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    open_journal(path, PLAN, DeployOptions(), inventory=None, lab=False)
    other = RolloutPlan(waves=(RolloutWave(index=1, name="w", hosts=("a",)),))
    with pytest.raises(JournalError, match="belongs to another plan"):
        open_journal(path, other, DeployOptions(), inventory=None, lab=False)
    with pytest.raises(JournalError, match="--strategy direct"):
        open_journal(path, PLAN, DeployOptions(strategy="gpo"), inventory=None, lab=False)
    path.write_text("{not json")
    with pytest.raises(JournalError, match="not a procaudit deploy journal"):
        JournalStore.load(path)


def test_host_entry_before_values_survive_a_resumed_run() -> None:
    entry = HostEntry(host="a", wave=1)
    entry.record_before({"registry:SCENoApplyLegacyAuditPolicy": None})
    entry.record_before({"registry:SCENoApplyLegacyAuditPolicy": 1})  # what a resumed run reads after the change
    assert entry.before["registry:SCENoApplyLegacyAuditPolicy"] is None


def test_gpo_records_from_journals_older_than_their_before_states_keep_what_they_meant() -> None:
    # A link procaudit did not create was there, disabled (enabled links are never recorded): rollback disables it.
    assert GpoLinkRecord.model_validate({"target": "OU=Servers", "created": False}).before == "disabled"
    assert GpoLinkRecord.model_validate({"target": "OU=Servers", "created": True}).before == "absent"
    assert (
        GpoLinkRecord.model_validate({"target": "OU=Servers", "created": False, "before": "absent"}).before == "absent"
    )
    # A recorded Authenticated Users permission was the one before filtering: a resume must not read it again.
    old = GpoEntry.model_validate({"dc": "dc1", "name": "P", "authenticated_users_before": "GpoApply"})
    assert old.authenticated_users_known
    assert not GpoEntry.model_validate({"dc": "dc1", "name": "P"}).authenticated_users_known
    new = {"dc": "dc1", "name": "P", "authenticated_users_before": None, "authenticated_users_known": True}
    assert GpoEntry.model_validate(new).authenticated_users_known
