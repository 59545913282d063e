"""``procaudit estimate``: the 4688 volume each host will add, counted on the hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from procaudit.cli.app import EXIT_CODES_HELP, app
from procaudit.cli.options import (
    ConnectionArgs,
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
from procaudit.estimate import EstimateReport, EstimateSettings, estimate
from procaudit.estimate.render import table, to_csv, to_html
from procaudit.inventory import Overrides
from procaudit.report.output import OutputFormat, emit, print_rich
from procaudit.units import format_bytes, format_count, parse_duration

OptionalFormatOpt = Annotated[
    OutputFormat | None,
    typer.Option("--format", "-f", help="Output format (default: from the --output suffix, else table)."),
]


def pick_format(fmt: OutputFormat | None, output: Path | None, allowed: tuple[OutputFormat, ...]) -> OutputFormat:
    """The explicit ``--format``, else the one the ``--output`` suffix names, else a table."""
    if fmt is None:
        suffix = output.suffix.lower().lstrip(".") if output is not None else ""
        fmt = OutputFormat(suffix) if suffix in {f.value for f in allowed} else OutputFormat.table
    if fmt not in allowed:
        raise UserInputError(f"--format {fmt.value}: this command writes {', '.join(f.value for f in allowed)}")
    return fmt


def settings_from_options(
    window: str, sample: str, retention_days: float, forward_factor: float, record_bytes: int
) -> EstimateSettings:
    window_seconds = parse_duration(window, option="--window", default_unit="h")
    if window_seconds % 3600 or not 3600 <= window_seconds <= 8784 * 3600:
        raise UserInputError(f"--window {window!r}: whole hours from 1h to 366d")
    sample_seconds = parse_duration(sample, option="--sample")
    if sample_seconds % 1 or not 0 <= sample_seconds <= 3600:
        raise UserInputError(f"--sample {sample!r}: whole seconds from 0 (no live sample) to 1h")
    return EstimateSettings(
        window_hours=int(window_seconds // 3600),
        sample_seconds=int(sample_seconds),
        retention_days=retention_days,
        forward_factor=forward_factor,
        record_bytes=record_bytes,
    )


@app.command(
    "estimate",
    help="Estimate the 4688 volume each host will add: counted on each host (4688, else Sysmon 1, else 4689 "
    "history, else a live sample); only hourly counts cross the wire. " + EXIT_CODES_HELP,
)
@remoting_options
def estimate_command(
    inventory: InventoryOpt,
    window: Annotated[str, typer.Option("--window", help="History to count: 7d, 36h, ...")] = "7d",
    sample: Annotated[
        str, typer.Option("--sample", help="Live sample length for hosts without history (0 = none).")
    ] = "5m",
    retention_days: Annotated[
        float, typer.Option("--retention-days", min=0.1, help="Days the Security log should keep.")
    ] = 14.0,
    forward_factor: Annotated[
        float,
        typer.Option(
            "--forward-factor",
            min=0.01,
            help="Bytes forwarded per byte on disk (3.5: SIEM JSON with message; 1.3 without; 0.5 SCOM ACS).",
        ),
    ] = 3.5,
    record_bytes: Annotated[
        int,
        typer.Option("--record-bytes", min=100, max=65536, help="Bytes per 4688 record where it cannot be measured."),
    ] = 800,
    limit: LimitOpt = None,
    workers: WorkersOpt = 32,
    fmt: OptionalFormatOpt = None,
    output: OutputOpt = None,
    *,
    remoting: Overrides,
) -> None:
    chosen = pick_format(fmt, output, (OutputFormat.table, OutputFormat.json, OutputFormat.csv, OutputFormat.html))
    settings = settings_from_options(window, sample, retention_days, forward_factor, record_bytes)
    args = ConnectionArgs(inventory, limit, remoting)
    session = open_session(args)
    groups = {name: host.groups for name, host in session.inventory.hosts.items()}
    with progress(len(session.targets), "estimate") as advance:
        report = estimate(session.targets, session.connect, settings, groups=groups, workers=workers, on_done=advance)
    write_report(report, chosen, output)
    summary(report)
    if report.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(3 if report.failed else 0)


def write_report(report: EstimateReport, fmt: OutputFormat, output: Path | None) -> None:
    if fmt == OutputFormat.json:
        emit(report.to_json(), output)
    elif fmt == OutputFormat.csv:
        emit(to_csv(report), output)
    elif fmt == OutputFormat.html:
        emit(to_html(report), output)
    else:
        print_rich(table(report), output)


def summary(report: EstimateReport) -> None:
    counts: dict[str, int] = {}
    for h in report.hosts:
        counts[h.status] = counts.get(h.status, 0) + 1
    t = report.totals
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    stderr.print(
        f"{len(report.hosts)} hosts ({parts}): {format_count(t.events_per_day)} 4688/day, "
        f"{format_bytes(t.added_bytes_per_day)}/day added to Security logs, "
        f"{format_bytes(t.forwarded_bytes_per_day)}/day forwarded, {t.log_size_changes} log(s) to enlarge",
        highlight=False,
    )
