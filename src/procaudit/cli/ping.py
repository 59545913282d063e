"""``procaudit ping``."""

from __future__ import annotations

import csv
import io
import json

import typer
from rich.table import Table

from procaudit.cli.app import EXIT_CODES_HELP, app
from procaudit.cli.options import (
    ConnectionArgs,
    FormatOpt,
    InventoryOpt,
    LimitOpt,
    OutputOpt,
    WorkersOpt,
    open_session,
    progress,
    remoting_options,
    stderr,
)
from procaudit.errors import UserInputError
from procaudit.inventory import Overrides
from procaudit.ping import PingReport, ping
from procaudit.report.output import OutputFormat, emit, print_rich


@app.command("ping", help="Reach, authenticate and run PowerShell on each host. " + EXIT_CODES_HELP)
@remoting_options
def ping_command(
    inventory: InventoryOpt,
    limit: LimitOpt = None,
    workers: WorkersOpt = 32,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    *,
    remoting: Overrides,
) -> None:
    if fmt == OutputFormat.html:
        raise UserInputError("ping writes table, json or csv")
    args = ConnectionArgs(inventory, limit, remoting)
    session = open_session(args)
    with progress(len(session.targets), "ping") as advance:
        report = ping(session.targets, session.connect, workers=workers, on_done=advance)
    if fmt == OutputFormat.json:
        emit(json.dumps(report.model_dump(mode="json"), indent=2), output)
    elif fmt == OutputFormat.csv:
        emit(_csv(report), output)
    else:
        print_rich(_table(report), output)
    _summary(report)
    if report.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(3 if report.failed else 0)


def _table(report: PingReport) -> Table:
    lab = any(h.lab for h in report.hosts)
    table = Table(title="procaudit ping" + (" - LAB hosts (models, not Windows)" if lab else ""))
    for column in ("Host", "Status", "PowerShell", "OS", "Build", "Connect ms", "RTT ms", "Problem"):
        table.add_column(column, justify="right" if column.endswith("ms") else "left")
    for h in report.hosts:
        status = "[green]OK[/]" if h.status == "OK" else f"[red]{h.error.kind.upper() if h.error else 'ERROR'}[/]"
        table.add_row(
            h.host,
            status,
            h.ps_version or "",
            h.os_caption or "",
            h.os_build or "",
            f"{h.connect_ms:.0f}" if h.connect_ms is not None else "",
            f"{h.rtt_ms:.0f}" if h.rtt_ms is not None else "",
            h.error.message if h.error else "",
        )
    return table


def _csv(report: PingReport) -> str:
    buffer = io.StringIO()
    fields = [
        "host",
        "address",
        "status",
        "error_kind",
        "ps_version",
        "os_caption",
        "os_version",
        "os_build",
        "connect_ms",
        "rtt_ms",
        "elapsed_ms",
        "error",
        "lab",
    ]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for h in report.hosts:
        row = h.model_dump(exclude={"error", "reachable", "authenticated"})
        row["error_kind"] = h.error.kind if h.error else ""
        row["error"] = h.error.message if h.error else ""
        writer.writerow(row)
    return buffer.getvalue()


def _summary(report: PingReport) -> None:
    kinds: dict[str, int] = {}
    for h in report.hosts:
        if h.error:
            kinds[h.error.kind] = kinds.get(h.error.kind, 0) + 1
    ok = len(report.hosts) - report.failed
    detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    stderr.print(f"{len(report.hosts)} hosts: {ok} OK" + (f", {report.failed} failed ({detail})" if detail else ""))
