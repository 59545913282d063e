"""``procaudit demo``: the main flow against an in-process lab, as an administrator would see it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.rule import Rule

from procaudit.cli.app import app
from procaudit.cli.check import emit_readiness, emit_verify
from procaudit.cli.options import ConnectionArgs, open_session, stderr
from procaudit.cli.ping import _summary, _table
from procaudit.lab.runtime import Lab, lab_credentials, lab_plan
from procaudit.ping import ping
from procaudit.readiness.engine import check_hosts
from procaudit.report.output import OutputFormat, print_rich
from procaudit.verify import verify


@app.command("demo")
def demo() -> None:
    """Start a lab of a dozen mixed hosts and run the main flow against it over real PSRP."""
    credentials = lab_credentials()
    with (
        tempfile.TemporaryDirectory(prefix="procaudit-demo-") as workdir,
        Lab(lab_plan(None, None), credentials=credentials) as lab,
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

        stderr.print(Rule("2. check: will 4688 with command line be logged, and what is in the way"))
        readiness = check_hosts(session.targets, session.connect)
        emit_readiness(readiness, OutputFormat.table, None)
        stderr.print(readiness.summary.text, highlight=False)

        stderr.print(Rule("3. verify: start a marker process on each host and look for its 4688"))
        proof = verify(session.targets, session.connect, timeout_seconds=3)
        emit_verify(proof, OutputFormat.table, None)
        stderr.print(proof.summary.text, highlight=False)
