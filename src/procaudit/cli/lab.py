"""``procaudit lab``: serve modelled Windows hosts over real WinRM on loopback."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.table import Table

from procaudit.cli.app import app
from procaudit.cli.options import stderr
from procaudit.credentials import PASSWORD_ENV, USER_ENV
from procaudit.errors import UserInputError
from procaudit.lab.faults import FAULT_HELP, parse_fault_rule
from procaudit.lab.kdc import KdcUnavailable
from procaudit.lab.profiles import PROFILES
from procaudit.lab.runtime import LAB_AUTHS, Lab, LabTransport, lab_credentials, lab_plan
from procaudit.report.output import print_rich
from procaudit.transport.base import Credentials

lab_app = typer.Typer(help="Run the lab: modelled Windows hosts behind a real WinRM/PSRP endpoint on loopback.")
app.add_typer(lab_app, name="lab")


@lab_app.command("up")
def lab_up(
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Write the lab's inventory here.")],
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, max=60000, help="Number of hosts.")] = None,
    profiles: Annotated[
        str | None, typer.Option("--profiles", "-p", help="Comma-separated profiles (see 'lab profiles').")
    ] = None,
    fault: Annotated[list[str] | None, typer.Option("--fault", help=f"HOST=KIND: {FAULT_HELP}.")] = None,
    subnet: Annotated[
        int, typer.Option("--subnet", min=0, max=254, help="Serve on 127.N.0.0/16; 0 picks a free block.")
    ] = 20,
    transport: Annotated[
        str, typer.Option("--transport", help="https (5986, lab CA; default) or http (5985, message encryption).")
    ] = "https",
    kerberos: Annotated[
        bool, typer.Option("--kerberos", help="Run an MIT KDC for the lab realm; the inventory uses Kerberos.")
    ] = False,
    auth: Annotated[
        str | None,
        typer.Option(
            "--auth", help="Auth the inventory asks for: ntlm (default), negotiate, kerberos, credssp, certificate."
        ),
    ] = None,
) -> None:
    """Serve lab hosts in the foreground until Ctrl-C or SIGTERM; the inventory appears once all listen."""
    chosen = [p.strip() for p in profiles.split(",") if p.strip()] if profiles else None
    for name in chosen or []:
        if name not in PROFILES:
            raise UserInputError(f"unknown lab profile {name!r}; choose from {', '.join(PROFILES)}")
    if transport not in ("https", "http"):
        raise UserInputError(f"--transport must be https or http, not {transport!r}")
    if auth is not None and auth not in LAB_AUTHS:
        raise UserInputError(f"--auth must be one of {', '.join(LAB_AUTHS)}")
    credentials, generated = _credentials()
    lab = Lab(
        lab_plan(count, chosen),
        credentials=credentials,
        faults=[parse_fault_rule(spec) for spec in fault or []],
        subnet=subnet,
        transport=cast(LabTransport, transport),
        auth=auth,
        kerberos=kerberos,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        lab.start()
    except KdcUnavailable as exc:
        lab.stop()
        raise UserInputError(str(exc)) from None
    except BaseException:
        lab.stop()
        raise
    try:
        lab.write_inventory(inventory)
        stderr.print(
            f"lab: {len(lab.hosts)} hosts on 127.{lab.subnet}.x.x:{lab.port} ({lab.transport}, {lab.auth}); "
            f"inventory {inventory}"
        )
        if lab.ca_bundle is not None:
            stderr.print(f"lab: certificates from the lab CA {lab.ca_bundle} (the inventory's ca_bundle)")
        if generated:
            stderr.print("lab: no PROCAUDIT_USER/PROCAUDIT_PASSWORD set; the lab accepts this generated account:")
            stderr.print(
                f"  export {USER_ENV}='{credentials.username}' {PASSWORD_ENV}='{credentials.password}'",
                highlight=False,
                markup=False,
            )
        if lab.kdc is not None:
            stderr.print(f"lab: Kerberos realm {lab.kdc.realm} on 127.0.0.1:{lab.kdc.port}; user {lab.principal}")
            stderr.print(f"  export KRB5_CONFIG='{lab.kdc.krb5_conf}'", highlight=False, markup=False)
        stderr.print("lab: serving until Ctrl-C or SIGTERM")
        while not stop.wait(0.5):
            pass
    finally:
        lab.stop()
        if lab.kdc is not None:
            lab.kdc.stop()
    stderr.print("lab: stopped")


@lab_app.command("profiles")
def lab_profiles() -> None:
    """List the host profiles the lab can serve."""
    table = Table(title="lab profiles")
    table.add_column("Profile")
    table.add_column("Scenario")
    for info in PROFILES.values():
        table.add_row(info.name, info.summary)
    print_rich(table, None)


def _credentials() -> tuple[Credentials, bool]:
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        return Credentials(user, password), False
    return lab_credentials(), True
