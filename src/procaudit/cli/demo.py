"""``procaudit demo``: the main flow against an in-process lab, as an administrator would see it."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from rich.rule import Rule

from procaudit.cli.app import app
from procaudit.cli.options import ConnectionArgs, open_session, stderr
from procaudit.cli.ping import _summary, _table
from procaudit.lab.runtime import Lab, lab_credentials, lab_plan
from procaudit.ping import ping
from procaudit.report.output import print_rich


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
