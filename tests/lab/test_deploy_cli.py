"""``procaudit deploy`` / ``rollback`` as an administrator runs them (a subprocess), including SIGKILL of the
controller between hosts and in the middle of one, then a rerun with the same journal."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from procaudit.rollout.journal import IN_FLIGHT, Journal
from tests.lab.conftest import LabHandle, start_lab
from tests.lab.deploy_helpers import Session, load, lost_before_values, settings_of, unknown_hosts, wait_for
from tests.lab.test_cli import creds, run_cli

pytestmark = pytest.mark.slow

PROFILES = ["fresh-2019", "cmdline-off", "legacy-override", "workstation", "dc", "small-log"]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabHandle]:
    yield from start_lab(tmp_path, PROFILES, ["*=slow:40"])


def write_plan(path: Path, hosts: list[str]) -> Path:
    document = {
        "waves": [
            {"index": 1, "name": "canary", "hosts": hosts[:1], "soak_seconds": 0, "max_fail_percent": 0},
            {"index": 2, "name": "wave-02", "hosts": hosts[1:], "soak_seconds": 0, "max_fail_percent": 20},
        ],
        "hosts": [{"host": "lab-small-log-01", "log_size_change": {"requested_max_size": 128 * 1024 * 1024}}],
    }
    path.write_text(json.dumps(document))
    return path


def deploy_args(lab: LabHandle, plan: Path, journal: Path, *extra: str) -> list[str]:
    return [
        "deploy", "-i", str(lab.inventory), "--plan", str(plan), "--journal", str(journal),
        "--verify-timeout", "3", "--workers", "1", *extra,
    ]  # fmt: skip


def test_check_shows_the_diff_and_changes_nothing(lab: LabHandle, tmp_path: Path) -> None:
    session = Session(lab)
    before = {h: settings_of(f) for h, f in session.facts().items()}
    plan = write_plan(tmp_path / "plan.json", sorted(session.targets))
    result = run_cli(*deploy_args(lab, plan, tmp_path / "j.json", "--check"), env=creds(lab))
    assert result.returncode == 1, result.stderr
    assert "lab-fresh-2019-01:" in result.stdout
    assert "~ Force audit subcategory settings (SCENoApplyLegacyAuditPolicy): absent -> 1" in result.stdout
    assert "~ Security log maximum size: 20 MiB -> 128 MiB" in result.stdout
    assert "nothing was changed" in result.stderr and not (tmp_path / "j.json").exists()
    as_json = run_cli(*deploy_args(lab, plan, tmp_path / "j.json", "--check", "-f", "json"), env=creds(lab))
    document = json.loads(as_json.stdout)
    assert {h["host"] for h in document["hosts"]} == set(session.targets)
    assert all(h["status"] in ("PENDING", "OK") and h["lab"] is True for h in document["hosts"])
    assert {h: settings_of(f) for h, f in session.facts().items()} == before
    assert lab.credentials.password not in result.stdout + result.stderr + as_json.stdout


def test_deploy_asks_before_changing_hosts_and_rejects_bad_input_cleanly(lab: LabHandle, tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "plan.json", sorted(Session(lab).targets))
    unconfirmed = run_cli(*deploy_args(lab, plan, tmp_path / "j.json"), env=creds(lab))
    assert unconfirmed.returncode == 2 and "pass --yes" in unconfirmed.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"waves": [{"hosts": ["nowhere"]}]}')
    unknown = run_cli(*deploy_args(lab, bad, tmp_path / "j.json", "--yes"), env=creds(lab))
    assert unknown.returncode == 2 and "inventory does not have: nowhere" in unknown.stderr
    gpo = run_cli(*deploy_args(lab, plan, tmp_path / "j.json", "--strategy", "gpo"), env=creds(lab))
    assert gpo.returncode == 2 and "--dc HOST" in gpo.stderr
    for result in (unconfirmed, unknown, gpo):
        assert "Traceback" not in result.stderr


def _kill_when(process: subprocess.Popen[str], journal: Path, condition) -> Journal:  # type: ignore[no-untyped-def]
    def ready() -> Journal | None:
        if process.poll() is not None:
            raise AssertionError(
                f"the deployment ended before the kill point:\n{process.stderr.read() if process.stderr else ''}"
            )
        try:
            state = load(journal)
        except Exception:
            return None
        return state if condition(state) else None

    wait_for(ready, timeout=120, interval=0.002)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    return load(journal)


def _start(lab: LabHandle, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "procaudit", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200", **creds(lab)},
    )


def between_hosts(journal: Journal) -> bool:
    states = [e.state for e in journal.hosts.values()]
    return states.count("verified") >= 2 and not any(s in ("journaled", "applying", "applied") for s in states)


def mid_host(journal: Journal) -> bool:
    return (
        any(e.state == "applying" for e in journal.hosts.values())
        and sum(e.state == "verified" for e in journal.hosts.values()) >= 3
    )


@pytest.mark.parametrize("where", ["between_hosts", "mid_host"])
def test_sigkill_of_the_controller_then_a_rerun_converges(lab: LabHandle, tmp_path: Path, where: str) -> None:
    session = Session(lab)
    originals = {h: settings_of(f) for h, f in session.facts().items()}
    plan = write_plan(tmp_path / "plan.json", sorted(session.targets))
    journal = tmp_path / "deploy.journal.json"
    process = _start(lab, *deploy_args(lab, plan, journal, "--yes"))
    killed = _kill_when(process, journal, between_hosts if where == "between_hosts" else mid_host)
    assert process.returncode == -signal.SIGKILL
    in_flight = [h for h, e in killed.hosts.items() if e.state in IN_FLIGHT]
    if where == "mid_host":
        assert in_flight, "the kill did not land in the middle of a host"
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    now = {h: settings_of(f) for h, f in session.facts().items()}
    assert not lost_before_values(killed, originals, now), "a change landed without its before-value journalled"

    rerun = run_cli(*deploy_args(lab, plan, journal, "--yes"), env=creds(lab), timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resumed" in rerun.stderr
    final = load(journal)
    assert not unknown_hosts(final)
    assert all(e.state == "verified" for e in final.hosts.values())
    now = {h: settings_of(f) for h, f in session.facts().items()}
    assert not lost_before_values(final, originals, now)
    assert final.runs == 2

    rollback = run_cli("rollback", "--journal", str(journal), "--yes", "-f", "json", env=creds(lab), timeout=300)
    assert rollback.returncode == 0, rollback.stderr
    assert {h["status"] for h in json.loads(rollback.stdout)["hosts"]} <= {"RESTORED", "NOTHING_TO_DO"}
    assert {h: settings_of(f) for h, f in session.facts().items()} == originals
