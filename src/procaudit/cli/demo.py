"""``procaudit demo``: the main flow against an in-process lab, as an administrator would see it."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from procaudit.cli import estimate as estimate_cli
from procaudit.cli import plan as plan_cli
from procaudit.cli.app import app
from procaudit.cli.check import emit_readiness, emit_verify
from procaudit.cli.deploy import _progress, diff_text, result_table
from procaudit.cli.mp import _print_table, _push_table
from procaudit.cli.options import ConnectionArgs, open_session, stderr
from procaudit.cli.ping import _summary, _table
from procaudit.content import content_path
from procaudit.detections import mpbuild, scom
from procaudit.detections.replay import replay
from procaudit.detections.rules import load_rules
from procaudit.estimate import EstimateSettings, estimate
from procaudit.estimate.render import table as estimate_table
from procaudit.estimate.report import primary_group
from procaudit.events.model import VERSION_HOSTS
from procaudit.fsutil import atomic_write
from procaudit.lab.profiles import DEMO_MIX
from procaudit.lab.runtime import Lab, lab_credentials, lab_plan
from procaudit.ping import ping
from procaudit.readiness.engine import check_hosts
from procaudit.report.output import OutputFormat, emit, print_rich
from procaudit.rollout import PlanSettings, build_plan
from procaudit.rollout.deploy import Deployment, DeployOptions, open_journal
from procaudit.rollout.plan import estimate_digest
from procaudit.rollout.planfile import plan_from_document
from procaudit.rollout.render import table as plan_table
from procaudit.verify import confirm_in_scom, verify

SCOM_SERVER = "lab-scom-01"
MARKER_HOST = "lab-ready-01"


def _sample_events() -> Path | None:
    """``../shared/data/events`` (or under ``$PROCAUDIT_SHARED``), when this checkout has it."""
    root = Path(os.environ.get("PROCAUDIT_SHARED") or Path.cwd().parent / "shared")
    events = root / "data" / "events"
    return events if events.is_dir() else None


@app.command("demo")
def demo() -> None:
    """Start a lab of a dozen mixed hosts and a SCOM management server and run the main flow over real PSRP."""
    credentials = lab_credentials()
    with (
        tempfile.TemporaryDirectory(prefix="procaudit-demo-") as workdir,
        Lab(lab_plan(None, [*DEMO_MIX, "scom"]), credentials=credentials) as lab,
    ):
        inventory = Path(workdir) / "lab.yml"
        lab.write_inventory(inventory)
        stderr.print(Rule("procaudit demo: every host below is a lab model served over WinRM on loopback"))
        stderr.print(f"lab: {len(lab.hosts)} hosts on 127.{lab.subnet}.x.x:{lab.port} (inventory {inventory})")
        stderr.print(f"lab: WinRM over HTTPS, certificates checked against the lab CA {lab.ca_bundle}\n")
        session = open_session(ConnectionArgs(inventory), credentials)

        stderr.print(Rule("1. ping: reach, authenticate, run PowerShell"))
        report = ping(session.targets, session.connect)
        print_rich(_table(report), None)
        _summary(report)

        stderr.print(Rule("certificates are checked: the same host without the lab CA in the trust store"))
        first = session.targets[0]
        untrusted = dataclasses.replace(first, options=dataclasses.replace(first.options, ca_bundle=None))
        failed = ping([untrusted], session.connect).hosts[0]
        stderr.print(
            f"{failed.host}: {failed.error.kind if failed.error else 'OK'}: "
            f"{failed.error.message if failed.error else ''}",
            highlight=False,
            markup=False,
        )

        stderr.print(Rule("2. check: will 4688 with command line be logged, and what is in the way"))
        readiness = check_hosts(session.targets, session.connect)
        emit_readiness(readiness, OutputFormat.table, None)
        stderr.print(readiness.summary.text, highlight=False)

        stderr.print(Rule("3. verify: start a marker process on each host and look for its 4688"))
        proof = verify(session.targets, session.connect, timeout_seconds=3)
        emit_verify(proof, OutputFormat.table, None)
        stderr.print(proof.summary.text, highlight=False)

        stderr.print(Rule("4. estimate: 4688 volume per host, counted on each host (only hourly counts travel)"))
        groups = {name: host.groups for name, host in session.inventory.hosts.items()}
        estimated = estimate(session.targets, session.connect, EstimateSettings(), groups=groups)
        print_rich(estimate_table(estimated), None)
        estimate_cli.summary(estimated)

        stderr.print(Rule("5. plan: a canary, then waves of at most 2 events/s and 4 hosts; busy hosts and DCs last"))
        settings = PlanSettings(canary="1", max_events_per_sec=2.0, max_hosts=4, soak_seconds=1800)
        selected = [(h.name, primary_group(h.groups)) for h in session.inventory.select(None)]
        text = estimated.to_json()
        rollout = build_plan(estimated, selected, settings, estimate_sha256=estimate_digest(text))
        print_rich(plan_table(rollout), None)
        plan_cli.summary(rollout)

        stderr.print(Rule("6. deploy --check: each host's diff, from its facts; nothing is changed"))
        planned = plan_from_document(json.loads(rollout.to_json()), source="the plan above")
        # The plan soaks 30 minutes after each wave; the demo does not wait.
        planned = planned.model_copy(
            update={"waves": tuple(w.model_copy(update={"soak_seconds": 0}) for w in planned.waves)}
        )
        targets = {t.name: t for t in session.targets}
        options = DeployOptions(verify_timeout=3)
        deployment = Deployment(planned, targets, session.connect, options, progress=_progress)
        emit(diff_text(deployment.predict()), None)

        stderr.print(Rule("7. deploy: wave by wave - journal, change, read back, verify, gate (soak skipped)"))
        journal = Path(workdir) / "deploy.journal.json"
        deployed = deployment.run(open_journal(journal, planned, options, inventory=inventory, lab=True))
        print_rich(result_table(deployed), None)
        stderr.print(deployed.summary, highlight=False, markup=False)
        stderr.print(f"journal {journal}: rerun 'procaudit deploy' with it to resume, 'procaudit rollback' to undo")

        stderr.print(Rule("8. mp build: the detection rules compiled into a SCOM management pack"))
        rules = load_rules(content_path("detections"))
        built = mpbuild.build(rules)
        pack = Path(workdir) / f"{built.mp_id}.xml"
        atomic_write(pack, built.xml, mode=0o644)
        stderr.print(
            f"{built.mp_id} {built.version}: {len(built.rules)} rules, {len(built.xml) // 1024} KB, "
            "valid against the MP schema and the semantic checks",
            highlight=False,
        )
        for version, hosts in VERSION_HOSTS.items():
            blind = [rule.id for rule in rules if version in rule.blind_versions]
            if blind:
                names = ", ".join(blind) if len(blind) <= 3 else f"{len(blind)} of {len(rules)} rules"
                stderr.print(f"  blind on 4688 v{version} ({hosts}): {names}", highlight=False)

        stderr.print(Rule("9. mp test: real event samples replayed through the same rules"))
        events = _sample_events()
        if events is None:
            stderr.print("skipped: no sample events here (../shared/data/events; set PROCAUDIT_SHARED)")
        else:
            files = sorted(p for p in events.rglob("*") if p.suffix in (".evtx", ".json", ".jsonl"))
            _print_table(Console(), replay(files, rules), show_matches=False)

        stderr.print(Rule(f"10. mp push: install the pack on {SCOM_SERVER}, then push again (backup, version bump)"))
        target = next(t for t in session.targets if t.name == SCOM_SERVER)
        connector = session.connect(target)
        try:
            for _ in range(2):
                pushed = scom.push(connector, rules, backup_dir=Path(workdir) / "mp-backups")
                print_rich(_push_table(scom.PushReport(hosts=[pushed])), None)

            stderr.print(Rule(f"11. verify --scom {SCOM_SERVER}: a marker on {MARKER_HOST}, its canary alert in SCOM"))
            marker = next(t for t in session.targets if t.name == MARKER_HOST)
            proof = confirm_in_scom(verify([marker], session.connect, timeout_seconds=3), connector, timeout_seconds=0)
            emit_verify(proof, OutputFormat.table, None)
            stderr.print(proof.summary.text, highlight=False)
        finally:
            connector.close()
