"""``procaudit check``, ``procaudit verify`` and ``procaudit collector``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from procaudit.cli.app import EXIT_CODES_HELP, app
from procaudit.cli.options import (
    ConnectionArgs,
    FormatOpt,
    InventoryOpt,
    LimitOpt,
    OutputOpt,
    Session,
    WorkersOpt,
    open_session,
    progress,
    remoting_options,
    stderr,
)
from procaudit.errors import UserInputError
from procaudit.facts import ProbeParams
from procaudit.fsutil import atomic_write
from procaudit.inventory import Overrides, to_targets
from procaudit.readiness import engine
from procaudit.readiness.catalog import load_catalog
from procaudit.readiness.collector import render_collector
from procaudit.report.output import OutputFormat, emit, print_rich
from procaudit.report.readiness import (
    readiness_csv,
    readiness_details,
    readiness_html,
    readiness_table,
    verify_csv,
    verify_table,
)
from procaudit.transport.base import HostTarget
from procaudit.verify import VerifyReport, confirm_in_scom, verify
from procaudit.verify import exit_code as verify_exit_code

EvidenceOpt = Annotated[
    Path | None,
    typer.Option("--evidence", help="Evaluate Collect-ProcAudit.ps1 output files (*.json) in this folder instead."),
]
SkipOpt = Annotated[
    list[str] | None, typer.Option("--skip", help="Check id to report as SKIPPED (repeat for several).")
]
WindowOpt = Annotated[
    int, typer.Option("--window-hours", min=1, max=720, help="Count 4688 events of the last N hours.")
]
MaxEventsOpt = Annotated[
    int, typer.Option("--max-events", min=1, max=100000, help="Count at most this many of the newest 4688 events.")
]
ShowCmdOpt = Annotated[
    bool, typer.Option("--show-command-lines", help="Show command lines in the report (redacted by default).")
]


@app.command(
    "check",
    help="Readiness per host: will 4688 with command line be logged, what is in the way, what to do. "
    "One probe script per host. " + EXIT_CODES_HELP,
)
@remoting_options
def check_command(
    inventory: Annotated[
        Path | None, typer.Option("--inventory", "-i", help="Inventory file (procaudit or Ansible YAML).")
    ] = None,
    evidence: EvidenceOpt = None,
    limit: LimitOpt = None,
    skip: SkipOpt = None,
    window_hours: WindowOpt = 24,
    max_events: MaxEventsOpt = 2000,
    workers: WorkersOpt = 32,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    *,
    remoting: Overrides,
) -> None:
    if (inventory is None) == (evidence is None):
        raise UserInputError("give either --inventory (probe hosts over WinRM) or --evidence (collector files)")
    if evidence is not None:
        if limit is not None:
            raise UserInputError(
                "--limit selects inventory hosts; with --evidence, put only the wanted files in the folder"
            )
        report = engine.check_evidence(evidence, skip=skip or ())
    else:
        assert inventory is not None
        args = ConnectionArgs(inventory, limit, remoting)
        engine.validate_skip(skip or (), load_catalog())
        session = open_session(args)
        with progress(len(session.targets), "check") as advance:
            report = engine.check_hosts(
                session.targets,
                session.connect,
                params=ProbeParams(window_hours=window_hours, max_events=max_events),
                skip=skip or (),
                workers=workers,
                on_done=advance,
            )
    emit_readiness(report, fmt, output)
    stderr.print(report.summary.text, highlight=False)
    if report.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(engine.exit_code(report))


def emit_readiness(report: engine.ReadinessReport, fmt: OutputFormat, output: Path | None) -> None:
    if fmt == OutputFormat.json:
        emit(report.to_json(), output)
    elif fmt == OutputFormat.csv:
        emit(readiness_csv(report), output)
    elif fmt == OutputFormat.html:
        emit(readiness_html(report), output)
    else:
        print_rich(readiness_table(report), output)
        if output is None and any(h.blocked_by or h.status != engine.HostStatus.READY for h in report.hosts):
            print_rich(readiness_details(report), None)


@app.command(
    "verify",
    help="Prove that 4688 with command line is logged now: start a harmless marker process on each host "
    "(cmd.exe /d /c rem procaudit-verify-<nonce>) and wait for its event. " + EXIT_CODES_HELP,
)
@remoting_options
def verify_command(
    inventory: InventoryOpt,
    limit: LimitOpt = None,
    timeout: Annotated[
        int, typer.Option("--timeout", min=1, max=600, help="Seconds to wait for the marker's 4688 on each host.")
    ] = 30,
    show_command_lines: ShowCmdOpt = False,
    scom: Annotated[
        str | None,
        typer.Option(
            "--scom",
            help="Also confirm each logged marker's canary alert on this SCOM management server (an inventory host).",
        ),
    ] = None,
    scom_timeout: Annotated[
        float, typer.Option("--scom-timeout", min=0, help="Seconds to wait for the canary alerts in SCOM.")
    ] = 300.0,
    workers: WorkersOpt = 32,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    *,
    remoting: Overrides,
) -> None:
    if fmt == OutputFormat.html:
        raise UserInputError("verify writes table, json or csv")
    args = ConnectionArgs(inventory, limit, remoting)
    session = open_session(args)
    server = _scom_server(session, args, scom) if scom else None
    with progress(len(session.targets), "verify") as advance:
        report = verify(
            session.targets,
            session.connect,
            timeout_seconds=timeout,
            show_command_lines=show_command_lines,
            workers=workers,
            on_done=advance,
        )
    if server is not None:
        stderr.print(f"waiting up to {scom_timeout:g} s for the canary alerts on {server.name} ...", highlight=False)
        connector = session.connect(server)
        try:
            report = confirm_in_scom(report, connector, timeout_seconds=scom_timeout)
        finally:
            connector.close()
    emit_verify(report, fmt, output)
    stderr.print(report.summary.text, highlight=False)
    if report.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(verify_exit_code(report))


def _scom_server(session: Session, args: ConnectionArgs, name: str) -> HostTarget:
    """The management server named by --scom: exactly one inventory host, whether or not --limit selects it."""
    matches = session.inventory.select(name)
    if len(matches) != 1:
        raise UserInputError(f"--scom {name!r} matches {len(matches)} inventory hosts; name exactly one")
    return to_targets(session.inventory, matches, args.overrides)[0]


def emit_verify(report: VerifyReport, fmt: OutputFormat, output: Path | None) -> None:
    if fmt == OutputFormat.json:
        emit(report.to_json(), output)
    elif fmt == OutputFormat.csv:
        emit(verify_csv(report), output)
    else:
        print_rich(verify_table(report), output)


@app.command(
    "collector",
    help="Write Collect-ProcAudit.ps1: the readiness probe as a standalone script for hosts WinRM cannot reach. "
    "Run it elevated on each host, then: procaudit check --evidence <folder of its .json files>.",
)
def collector_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the script.")] = Path(
        "Collect-ProcAudit.ps1"
    ),
    window_hours: WindowOpt = 24,
    max_events: MaxEventsOpt = 2000,
) -> None:
    text = render_collector(ProbeParams(window_hours=window_hours, max_events=max_events))
    # Windows PowerShell 5.1 reads a BOM-less script as ANSI: write UTF-8 with BOM and CRLF line ends.
    atomic_write(output, "\ufeff" + text.replace("\r\n", "\n").replace("\n", "\r\n"), mode=0o644)
    stderr.print(f"wrote {output}: run it elevated on each host, then 'procaudit check --evidence <folder>'")
