"""Options shared by every command that talks to hosts, and the plumbing from options to connectors."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from procaudit.credentials import resolve_credentials
from procaudit.errors import UserInputError
from procaudit.inventory import Inventory, Overrides, load_inventory, to_targets, unsafe_settings
from procaudit.report.output import OutputFormat
from procaudit.transport.base import AUTH_METHODS, Connector, Credentials, HostTarget, option_problem

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
OperationTimeoutOpt = Annotated[
    int | None,
    typer.Option(
        "--operation-timeout",
        help="Longest WinRM OperationTimeout of one exchange (s): how long the host may hold a request open "
        "(used up to 5 s, and never past the script deadline).",
    ),
]
ScriptTimeoutOpt = Annotated[float | None, typer.Option("--script-timeout", help="Deadline per remote script (s).")]


# The WinRM options every host-facing command takes, declared once (see ``remoting_options``).
_REMOTING: Final = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, annotation, default in (
        ("transport", TransportOpt, None),
        ("port", PortOpt, None),
        ("auth", AuthOpt, None),
        ("user", UserOpt, None),
        ("ca_bundle", CaBundleOpt, None),
        ("no_verify", NoVerifyOpt, False),
        ("connect_timeout", ConnectTimeoutOpt, None),
        ("operation_timeout", OperationTimeoutOpt, None),
        ("script_timeout", ScriptTimeoutOpt, None),
    )
]

C = TypeVar("C", bound=Callable[..., Any])


def remoting_options(command: C) -> C:
    """Give a Typer command the WinRM connection options; it receives them validated as ``remoting: Overrides``.

    Typer builds a command's options from its signature, so the wrapper's signature is the command's own
    parameters plus the nine shared ones: they are declared here once instead of in every command.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "remoting"]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {p.name: kwargs.pop(p.name) for p in _REMOTING}
        return command(*args, remoting=remoting_overrides(**given), **kwargs)

    parameters = [*own, *_REMOTING]
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": signature.return_annotation}
    return cast(C, wrapper)


def remoting_overrides(
    *,
    transport: str | None = None,
    port: int | None = None,
    auth: str | None = None,
    user: str | None = None,
    ca_bundle: Path | None = None,
    no_verify: bool = False,
    connect_timeout: float | None = None,
    operation_timeout: int | None = None,
    script_timeout: float | None = None,
) -> Overrides:
    """The connection options as given on the command line (None = not given), checked."""
    if transport not in (None, "https", "http"):
        raise UserInputError(f"--transport must be https or http, not {transport!r}")
    if auth is not None and auth not in AUTH_METHODS:
        if auth == "basic":
            raise UserInputError("Basic auth is not supported; use negotiate, kerberos or ntlm")
        raise UserInputError(f"--auth must be one of {', '.join(AUTH_METHODS)}")
    for option, value in (
        ("--port", port),
        ("--connect-timeout", connect_timeout),
        ("--operation-timeout", operation_timeout),
        ("--script-timeout", script_timeout),
    ):
        problem = option_problem(option, value) if value is not None else None
        if problem is not None:
            raise UserInputError(f"{option} {problem}, not {value:g}")
    if transport == "http":
        # Over HTTP there is no server certificate to check: a CA bundle or --no-verify there is a mistake.
        given = [name for name, on in (("--ca-bundle", ca_bundle is not None), ("--no-verify", no_verify)) if on]
        if given:
            raise UserInputError(
                f"{' and '.join(given)} apply to HTTPS certificates; --transport http has none (WinRM message "
                "encryption protects HTTP)"
            )
    if ca_bundle is not None and not ca_bundle.is_file():
        raise UserInputError(f"--ca-bundle {ca_bundle}: no such file")
    return Overrides(
        transport=transport,
        port=port,
        auth=auth,
        user=user,
        ca_bundle=ca_bundle,
        no_verify=no_verify,
        connect_timeout=connect_timeout,
        operation_timeout=operation_timeout,
        script_timeout=script_timeout,
    )


@dataclass
class ConnectionArgs:
    """Which hosts a command talks to, and how: the inventory, --limit and the connection options."""

    inventory: Path
    limit: str | None = None
    overrides: Overrides = field(default_factory=Overrides)


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
    targets = to_targets(inventory, inventory.select(args.limit), args.overrides)
    if args.overrides.no_verify:
        stderr.print(
            "[bold yellow]warning:[/] --no-verify: HTTPS certificates are not checked; anyone on the path can "
            "impersonate these hosts and capture the credentials.",
            highlight=False,
        )
    for warning in unsafe_settings(targets, args.overrides):
        stderr.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    needs_password = any(t.options.auth not in ("kerberos", "certificate") for t in targets)
    # One password (PROCAUDIT_PASSWORD or the prompt) serves one account: when the inventory names the account
    # (a lab's Kerberos principal, say), every selected host must name the same one, and hosts that name none
    # use it too. --user (already applied to every target) wins over the inventory. Certificate logons use no
    # account name or password, so they do not count.
    named = sorted({t.username for t in targets if t.username and t.options.auth != "certificate"})
    if len(named) > 1:
        raise UserInputError(
            f"the selected hosts name {len(named)} different users ({', '.join(named)}); one password cannot "
            "serve several accounts: pass --user, or run once per account with --limit"
        )
    user = args.overrides.user or (named[0] if named else None)
    base = credentials or resolve_credentials(user, needs_password=needs_password)
    from procaudit.transport.psrp import PsrpConnector  # imported here: keeps --help fast

    def connect(target: HostTarget) -> Connector:
        credentials: Credentials | None = base
        if base is not None and target.username and target.username != base.username:
            # The inventory's spelling of the account (user@REALM for Kerberos) with the run's one password.
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
