"""Options shared by every command that talks to hosts, and the plumbing from options to connectors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from procaudit.credentials import resolve_credentials
from procaudit.errors import UserInputError
from procaudit.inventory import Inventory, Overrides, load_inventory, to_targets
from procaudit.report.output import OutputFormat
from procaudit.transport.base import AUTH_METHODS, Connector, Credentials, HostTarget

stderr = Console(stderr=True)

InventoryOpt = Annotated[
    Path, typer.Option("--inventory", "-i", help="Inventory file (procaudit or Ansible YAML).", show_default=False)
]
LimitOpt = Annotated[
    str | None,
    typer.Option(
        "--limit", "-l", help="Hosts or groups to include: globs, comma-separated; '!x' excludes, '&x' intersects."
    ),
]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, max=1024, help="Hosts in flight at once.")]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file.")]
TransportOpt = Annotated[
    str | None, typer.Option("--transport", help="https (5986, default) or http (5985, message encryption).")
]
PortOpt = Annotated[int | None, typer.Option("--port", help="WinRM port (default 5986 for https, 5985 for http).")]
AuthOpt = Annotated[
    str | None, typer.Option("--auth", help="negotiate (default), kerberos, ntlm, credssp, certificate.")
]
UserOpt = Annotated[str | None, typer.Option("--user", "-u", help="User (DOMAIN\\user); default PROCAUDIT_USER.")]
CaBundleOpt = Annotated[
    Path | None, typer.Option("--ca-bundle", help="PEM file of CAs that issued the WinRM certificates.")
]
NoVerifyOpt = Annotated[
    bool,
    typer.Option("--no-verify", help="Do not validate HTTPS certificates (lab only: anyone can impersonate hosts)."),
]
ConnectTimeoutOpt = Annotated[float | None, typer.Option("--connect-timeout", help="Seconds to wait for TCP connect.")]
OperationTimeoutOpt = Annotated[int | None, typer.Option("--operation-timeout", help="WinRM operation timeout (s).")]
ScriptTimeoutOpt = Annotated[float | None, typer.Option("--script-timeout", help="Deadline per remote script (s).")]


@dataclass
class ConnectionArgs:
    """The connection options of one command invocation, as given (None = not given)."""

    inventory: Path
    limit: str | None = None
    transport: str | None = None
    port: int | None = None
    auth: str | None = None
    user: str | None = None
    ca_bundle: Path | None = None
    no_verify: bool = False
    connect_timeout: float | None = None
    operation_timeout: int | None = None
    script_timeout: float | None = None

    def overrides(self) -> Overrides:
        if self.transport not in (None, "https", "http"):
            raise UserInputError(f"--transport must be https or http, not {self.transport!r}")
        if self.auth is not None and self.auth not in AUTH_METHODS:
            if self.auth == "basic":
                raise UserInputError("Basic auth is not supported; use negotiate, kerberos or ntlm")
            raise UserInputError(f"--auth must be one of {', '.join(AUTH_METHODS)}")
        if self.ca_bundle is not None and not self.ca_bundle.is_file():
            raise UserInputError(f"--ca-bundle {self.ca_bundle}: no such file")
        return Overrides(
            transport=self.transport,
            port=self.port,
            auth=self.auth,
            user=self.user,
            ca_bundle=self.ca_bundle,
            no_verify=self.no_verify,
            connect_timeout=self.connect_timeout,
            operation_timeout=self.operation_timeout,
            script_timeout=self.script_timeout,
        )


@dataclass
class Session:
    inventory: Inventory
    targets: list[HostTarget]
    connect: Callable[[HostTarget], Connector]


def open_session(args: ConnectionArgs, credentials: Credentials | None = None) -> Session:
    """Load the inventory, select hosts, resolve settings and credentials; warn about unsafe choices."""
    inventory = load_inventory(args.inventory)
    for notice in inventory.notices:
        stderr.print(f"[yellow]note:[/] {notice}", highlight=False)
    targets = to_targets(inventory, inventory.select(args.limit), args.overrides())
    if args.no_verify:
        stderr.print(
            "[bold yellow]warning:[/] --no-verify: HTTPS certificates are not checked; anyone on the path can "
            "impersonate these hosts and capture the credentials.",
            highlight=False,
        )
    needs_password = any(t.options.auth not in ("kerberos", "certificate") for t in targets)
    # When the inventory names the one account every host uses (a lab's Kerberos principal, say), no
    # PROCAUDIT_USER is needed; --user and per-host users still win where they are set.
    named = {t.username for t in targets}
    user = args.user or (named.pop() if len(named) == 1 else None)
    base = credentials or resolve_credentials(user, needs_password=needs_password)
    from procaudit.transport.psrp import PsrpConnector  # imported here: keeps --help fast

    def connect(target: HostTarget) -> Connector:
        credentials: Credentials | None = base
        if base is not None and target.username and target.username != base.username:
            credentials = Credentials(target.username, base.password)
        return PsrpConnector(target, credentials)

    return Session(inventory, targets, connect)


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[Any], None]]:
    """A progress bar on stderr (only on a terminal); yields the per-host completion callback."""
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    task = bar.add_task(label, total=total)
    with bar:
        yield lambda _outcome: bar.advance(task)
