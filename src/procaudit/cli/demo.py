"""``procaudit demo``: the main flow against an in-process lab, as an administrator would see it."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from procaudit.cli.app import app
from procaudit.cli.mp import _alert_table, _print_table, _push_table
from procaudit.cli.options import ConnectionArgs, open_session, stderr
from procaudit.cli.ping import _summary, _table
from procaudit.content import content_path
from procaudit.detections import mpbuild, scom
from procaudit.detections.replay import replay
from procaudit.detections.rules import load_rules
from procaudit.events.model import VERSION_HOSTS
from procaudit.fsutil import atomic_write
from procaudit.lab.eventlog import record_process_start
from procaudit.lab.profiles import DEMO_MIX
from procaudit.lab.runtime import Lab, lab_credentials, lab_plan
from procaudit.ping import ping
from procaudit.report.output import print_rich

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
        stderr.print(f"lab: {len(lab.hosts)} hosts on 127.{lab.subnet}.x.x:{lab.port} (inventory {inventory})\n")
        session = open_session(ConnectionArgs(inventory), credentials)

        stderr.print(Rule("1. ping: reach, authenticate, run PowerShell"))
        report = ping(session.targets, session.connect)
        print_rich(_table(report), None)
        _summary(report)

        stderr.print(Rule("2. mp build: the detection rules compiled into a SCOM management pack"))
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

        stderr.print(Rule("3. mp test: real event samples replayed through the same rules"))
        events = _sample_events()
        if events is None:
            stderr.print("skipped: no sample events here (../shared/data/events; set PROCAUDIT_SHARED)")
        else:
            files = sorted(p for p in events.rglob("*") if p.suffix in (".evtx", ".json", ".jsonl"))
            _print_table(Console(), replay(files, rules), show_matches=False)

        stderr.print(Rule(f"4. mp push: install the pack on {SCOM_SERVER}, then push again (backup, version bump)"))
        target = next(t for t in session.targets if t.name == SCOM_SERVER)
        connector = session.connect(target)
        try:
            for _ in range(2):
                pushed = scom.push(connector, rules, backup_dir=Path(workdir) / "mp-backups")
                print_rich(_push_table(scom.PushReport(hosts=[pushed])), None)

            stderr.print(Rule("5. the canary: a verification marker on a host, the alert in SCOM"))
            nonce = secrets.token_hex(16)
            stderr.print(
                f"the lab logs 'cmd.exe /d /c rem procaudit-verify-{nonce}' on {MARKER_HOST} "
                "(procaudit verify starts it over PSRP)",
                highlight=False,
            )
            record_process_start(
                lab.host(MARKER_HOST),
                {
                    "SubjectUserName": "operator",
                    "SubjectDomainName": "CORP",
                    "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
                    "CommandLine": f"cmd.exe /d /c rem procaudit-verify-{nonce}",
                    "ParentProcessName": "C:\\Windows\\System32\\wsmprovhost.exe",
                },
            )
            found = scom.find_canary_alert(connector, nonce, timeout=0)
            print_rich(_alert_table(scom.AlertReport(hosts=[found])), None)
        finally:
            connector.close()
