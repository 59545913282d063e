"""Ctrl-C during deploy's verify step stops the run as interrupted (exit 130) with a consistent journal, and a
rerun with the same journal verifies the wave again; a wave whose gate has failed already does not soak."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from procaudit.rollout.deploy import Deployment, DeployOptions, open_journal
from procaudit.rollout.journal import Journal
from procaudit.rollout.planfile import RolloutPlan, RolloutWave
from tests.lab.conftest import LabHandle, start_lab
from tests.lab.deploy_helpers import lab_session, load, wait_for
from tests.lab.test_cli import creds, run_cli
from tests.lab.test_deploy_cli import _start, deploy_args

pytestmark = pytest.mark.slow


@pytest.fixture
def slow_lab(tmp_path: Path) -> Iterator[LabHandle]:
    yield from start_lab(tmp_path, ["fresh-2019", "ready", "workstation"], ["*=slow:400"])


def wait_for_journal(
    process: subprocess.Popen[str], journal: Path, reached: Callable[[Journal], bool], what: str
) -> None:
    """Wait until the running deployment's journal shows ``reached`` (it must not end before)."""

    def check() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"the deployment ended before {what}:\n{process.stderr.read() if process.stderr else ''}"
            )
        try:
            return reached(load(journal))
        except Exception:  # not written yet, or caught mid-rename
            return False

    wait_for(check, timeout=120, interval=0.002)


def test_ctrl_c_during_verify_stops_the_run_and_the_rerun_verifies_again(slow_lab: LabHandle, tmp_path: Path) -> None:
    lab = slow_lab
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "waves": [
                    {"index": 1, "name": "one", "hosts": ["lab-fresh-2019-01", "lab-ready-01"]},
                    {"index": 2, "name": "two", "hosts": ["lab-workstation-01"]},
                ]
            }
        )
    )
    journal = tmp_path / "j.json"
    args = deploy_args(lab, plan, journal, "--yes")
    process = _start(lab, *args)

    wait_for_journal(process, journal, lambda j: j.wave(1).state == "verifying", "verify")
    os.kill(process.pid, signal.SIGINT)  # the operator's Ctrl-C
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    stored = load(journal)
    assert stored.wave(1).state == "verifying", "verify was cut short, yet the run went on"
    assert stored.wave(2).state == "pending" and stored.hosts["lab-workstation-01"].state == "pending"

    rerun = run_cli(*args, env=creds(lab), timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    final = load(journal)
    assert [w.state for w in final.waves] == ["passed", "passed"]
    assert all(e.verify is not None and e.verify.status == "PASS" for e in final.hosts.values())


def test_ctrl_c_while_applying_leaves_the_outcome_unknown_without_a_new_session(
    slow_lab: LabHandle, tmp_path: Path
) -> None:
    lab = slow_lab
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"waves": [{"index": 1, "name": "one", "hosts": ["lab-fresh-2019-01"]}]}))
    journal = tmp_path / "j.json"
    args = deploy_args(lab, plan, journal, "--yes")
    process = _start(lab, *args)

    wait_for_journal(process, journal, lambda j: j.hosts["lab-fresh-2019-01"].state == "applying", "applying")
    os.kill(process.pid, signal.SIGINT)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    entry = load(journal).hosts["lab-fresh-2019-01"]
    # The operator asked to stop: no fresh session re-reads the host now (that could take a whole deadline);
    # the journal says the outcome is unknown, and the rerun finds out first.
    assert entry.state == "failed" and not entry.outcome_known, entry
    assert entry.errors[-1].kind == "cancelled"
    rerun = run_cli(*args, env=creds(lab), timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    final = load(journal).hosts["lab-fresh-2019-01"]
    assert final.outcome_known and final.verify is not None and final.verify.status == "PASS"


def test_a_wave_whose_gate_failed_already_does_not_soak(tmp_path: Path) -> None:
    with lab_session(tmp_path, ["fresh-2019", "ready"], ["lab-fresh-2019-01=down"]) as session:
        plan = RolloutPlan(
            waves=(
                RolloutWave(index=1, name="one", hosts=("lab-fresh-2019-01",), soak_seconds=3600),
                RolloutWave(index=2, name="two", hosts=("lab-ready-01",)),
            )
        )
        slept: list[float] = []
        options = DeployOptions(verify_timeout=2, sleep=slept.append)
        report = Deployment(plan, session.targets, session.connect, options).run(
            open_journal(tmp_path / "j.json", plan, options, inventory=None, lab=True)
        )
        assert report.exit_code == 4 and report.stopped_wave == 1
        assert slept == [], "soaked an hour for a wave whose gate had failed"
