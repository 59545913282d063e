"""Fault injection during ``procaudit deploy``: faults injected, hosts left unknown, before-values lost.

Each trial starts a fresh lab (six mixed profiles, 40 ms of latency per exchange so the windows are real),
records every host's original settings, deploys a two-wave plan while injecting one fault, counts, then
clears the fault, reruns with the same journal, counts again, and rolls back. Scenarios:

* ``down`` / ``refuse`` / ``auth-fail`` / ``hang`` / ``drop`` on one host from the start (it fails before any change);
* ``drop`` / ``hang`` injected on a host the moment the journal says it is ``applying`` (the change's answer is
  lost, or the script never starts), and ``drop`` cleared as soon as the loss is journalled (same-run re-read);
* SIGKILL of the controller (``procaudit deploy`` in a subprocess, one host at a time) between hosts, and in the
  middle of a host (while it is ``applying``), for the direct strategy and for the GPO strategy (the lab's
  ``dc`` host serves the domain; the rerun and the rollback use the GPO strategy too).

Counts: "unknown" = hosts in reading/journaled/applying/applied, or failed after a change without a re-read;
"lost" = settings that differ from the original with no (or a wrong) before-value in the journal; "rollback
exact" = every setting deploy may change equals the original after ``rollback``. Goal: unknown 0 after the
rerun, lost 0 always, rollback exact always.

    PYTHONPATH=src:. python bench/deploy_faults.py [--trials 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.deploy_helpers import (
    JournalWatch,
    Session,
    lab_session,
    load,
    lost_before_values,
    settings_of,
    unknown_hosts,
    wait_for,
)
from tests.lab.test_cli import creds
from tests.unit.rollout.labhost import facts as model_facts

from procaudit.gpo.settings import DEFAULT_DISPLAY_NAME
from procaudit.inventory import Overrides
from procaudit.lab.faults import Fault
from procaudit.rollout.deploy import Deployment, DeployOptions, GpoOptions, open_journal
from procaudit.rollout.journal import Journal, JournalStore
from procaudit.rollout.planfile import load_rollout_plan
from procaudit.rollout.rollback import Rollback

PROFILES = ["fresh-2019", "cmdline-off", "legacy-override", "workstation", "dc", "small-log"]
TARGET = "lab-fresh-2019-01"
FAST = Overrides(connect_timeout=1.0, script_timeout=4.0)


@dataclass
class Tally:
    trials: int = 0
    faults: int = 0
    unknown_after_fault: int = 0
    unknown_after_rerun: int = 0
    lost: int = 0
    rollback_exact: int = 0
    notes: list[str] = field(default_factory=list)


def write_plan(path: Path, hosts: list[str]) -> Path:
    path.write_text(
        json.dumps(
            {
                "waves": [
                    {"index": 1, "hosts": hosts[:2], "soak_seconds": 0, "max_fail_percent": 100},
                    {"index": 2, "hosts": hosts[2:], "soak_seconds": 0, "max_fail_percent": 100},
                ],
                "hosts": [{"host": "lab-small-log-01", "log_size_change": {"requested_max_size": 128 * 1024 * 1024}}],
            }
        )
    )
    return path


OUS = (
    "OU=Servers,DC=corp,DC=example",
    "OU=Workstations,DC=corp,DC=example",
    "OU=Domain Controllers,DC=corp,DC=example",
)
GPO_ARGS = ["--strategy", "gpo", "--dc", "lab-dc-01", *(a for ou in OUS for a in ("--ou", ou))]


def options_for(session: Session, journal: Path) -> DeployOptions:
    """The strategy the journal was started with (direct unless the scenario started a GPO deployment)."""
    gpo = journal.exists() and load(journal).strategy == "gpo"
    if not gpo:
        return DeployOptions(verify_timeout=2)
    dc = session.targets["lab-dc-01"]
    return DeployOptions(strategy="gpo", verify_timeout=2, gpo=GpoOptions(dc=dc, ous=OUS, name=DEFAULT_DISPLAY_NAME))


def deploy(session: Session, plan_path: Path, journal: Path) -> None:
    plan = load_rollout_plan(plan_path)
    options = options_for(session, journal)
    store = (
        JournalStore.load(journal)
        if journal.exists()
        else open_journal(journal, plan, options, inventory=None, lab=True)
    )
    Deployment(plan, session.targets, session.connect, options).run(store)


def settings(session: Session) -> dict[str, dict[str, int | None]]:
    """The truth, read from the lab's host models (offline, through the probe's lab implementation): reachable
    or not, every host is counted."""
    return {name: settings_of(model_facts(rt.host)) for name, rt in session.handle.lab.hosts.items()}


def trial(work: Path, tally: Tally, faults: list[str], inject: Callable[[Session, Path, Path], None]) -> None:
    with lab_session(work, PROFILES, ["*=slow:40", *faults], FAST) as session:
        originals = settings(session)
        plan = write_plan(work / "plan.json", sorted(session.targets))
        journal = work / "deploy.journal.json"
        inject(session, plan, journal)
        tally.faults += 1
        first = load(journal)
        for endpoint in (rt.endpoint for rt in session.handle.lab.hosts.values()):
            endpoint.faults[:] = [f for f in endpoint.faults if f.kind == "slow" or f.kind in ("down", "refuse")]
        tally.unknown_after_fault += len(unknown_hosts(first))
        tally.lost += len(lost_before_values(first, originals, settings(session)))
        deploy(session, plan, journal)
        final = load(journal)
        now = settings(session)
        tally.unknown_after_rerun += len(unknown_hosts(final))
        tally.lost += len(lost_before_values(final, originals, now))
        Rollback(JournalStore.load(journal), session.targets, session.connect, dc=session.targets["lab-dc-01"]).run()
        if settings(session) == originals:
            tally.rollback_exact += 1
        tally.trials += 1


def static(session: Session, plan: Path, journal: Path) -> None:
    deploy(session, plan, journal)


def when_applying(kind: str, clear_on_loss: bool = False) -> Callable[[Session, Path, Path], None]:
    def inject(session: Session, plan: Path, journal: Path) -> None:
        endpoint = session.handle.endpoint(TARGET)
        fault = Fault(kind)  # type: ignore[arg-type]

        def applying(j: Journal) -> bool:
            return j.hosts[TARGET].state == "applying"

        def lost(j: Journal) -> bool:
            return bool(j.hosts[TARGET].errors)

        with JournalWatch(journal, applying, lambda _j: endpoint.faults.append(fault)):
            if clear_on_loss:
                with JournalWatch(journal, lost, lambda _j: endpoint.faults.remove(fault)):
                    deploy(session, plan, journal)
            else:
                deploy(session, plan, journal)

    return inject


def sigkill(condition: Callable[[Journal], bool], *extra: str) -> Callable[[Session, Path, Path], None]:
    def inject(session: Session, plan: Path, journal: Path) -> None:
        args = [sys.executable, "-m", "procaudit", "deploy", "-i", str(session.handle.inventory), "--plan", str(plan),
                "--journal", str(journal), "--yes", "--workers", "1", "--verify-timeout", "2", *extra]  # fmt: skip
        env = {**os.environ, **creds(session.handle)}
        process = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        def ready() -> bool:
            if process.poll() is not None:
                return True
            try:
                return condition(load(journal))
            except Exception:
                return False

        wait_for(ready, timeout=120, interval=0.002)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(30)

    return inject


def between_hosts(j: Journal) -> bool:
    states = [e.state for e in j.hosts.values()]
    return states.count("verified") >= 2 and not any(s in ("journaled", "applying", "applied") for s in states)


def mid_host(j: Journal) -> bool:
    return any(e.state == "applying" for e in j.hosts.values())


SCENARIOS: list[tuple[str, list[str], Callable[[Session, Path, Path], None]]] = [
    ("down from the start", ["lab-dc-01=down"], static),
    ("refuse from the start", ["lab-dc-01=refuse"], static),
    ("auth-fail from the start", ["lab-dc-01=auth-fail"], static),
    ("hang from the start", ["lab-dc-01=hang"], static),
    ("drop from the start", ["lab-dc-01=drop"], static),
    ("drop while applying", [], when_applying("drop")),
    ("hang while applying", [], when_applying("hang")),
    ("drop while applying, cleared", [], when_applying("drop", clear_on_loss=True)),
    ("SIGKILL between hosts", [], sigkill(between_hosts)),
    ("SIGKILL mid-host", [], sigkill(mid_host)),
    ("GPO strategy: SIGKILL mid-host", [], sigkill(mid_host, *GPO_ARGS)),
    ("GPO strategy: SIGKILL between hosts", [], sigkill(between_hosts, *GPO_ARGS)),
]


def row(label: str, t: Tally) -> str:
    return (
        f"{label:34} {t.trials:>6} {t.faults:>6} {t.unknown_after_fault:>20} {t.unknown_after_rerun:>20} "
        f"{t.lost:>19} {t.rollback_exact:>12}/{t.trials}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    totals = Tally()
    print(f"{'scenario':34} {'trials':>6} {'faults':>6} {'unknown after fault':>20} {'unknown after rerun':>20} "
          f"{'before-values lost':>19} {'rollback exact':>15}")  # fmt: skip
    for label, faults, inject in SCENARIOS:
        tally = Tally()
        for _ in range(args.trials):
            with tempfile.TemporaryDirectory(prefix="procaudit-faults-") as work:
                trial(Path(work), tally, faults, inject)
        for name in ("trials", "faults", "unknown_after_fault", "unknown_after_rerun", "lost", "rollback_exact"):
            setattr(totals, name, getattr(totals, name) + getattr(tally, name))
        print(row(label, tally))
    print(row("total", totals))


if __name__ == "__main__":
    main()
