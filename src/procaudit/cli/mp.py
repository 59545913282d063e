"""``procaudit mp``: build the detection management pack, replay events through the rules, import Sigma rules,
push the pack to a SCOM management server and find the canary alert there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from procaudit.cli.options import (
    ConnectionArgs,
    FormatOpt,
    InventoryOpt,
    OutputOpt,
    open_session,
    remoting_options,
    stderr,
)
from procaudit.content import content_path
from procaudit.detections import mpbuild, replay, scom, sigma_import
from procaudit.detections.rules import load_rules
from procaudit.errors import UserInputError
from procaudit.fsutil import atomic_write
from procaudit.inventory import Overrides
from procaudit.report.output import OutputFormat, emit, print_rich
from procaudit.transport.base import Connector

app = typer.Typer(name="mp", help="Detection rules and the SCOM management pack.", no_args_is_help=True)

RulesOption = Annotated[
    Path | None, typer.Option("--rules", help="Rules directory (default: the shipped detections/).")
]


def _rules_dir(rules: Path | None) -> Path:
    return rules if rules is not None else content_path("detections")


@app.command()
def build(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the management pack XML.")],
    name: Annotated[str, typer.Option("--name", help="Management pack id.")] = mpbuild.DEFAULT_MP_ID,
    version: Annotated[str, typer.Option("--version", help="Version a.b.c.d; bump it on every push.")] = (
        mpbuild.DEFAULT_VERSION
    ),
    rules: RulesOption = None,
) -> int:
    """Compile the rules into an unsealed MP, validated against the SCOM schema."""
    compiled = load_rules(_rules_dir(rules))
    result = mpbuild.build(compiled, mp_id=name, version=version)
    atomic_write(output, result.xml, mode=0o644)
    err = Console(stderr=True)
    err.print(f"wrote {output}: {result.mp_id} {result.version}, {len(result.rules)} rules (XSD and checks passed)")
    for summary in result.rules:
        state = "" if summary.enabled else " (disabled)"
        if summary.blind_on:
            err.print(f"  {summary.rule_id}{state}: blind on " + "; ".join(summary.blind_on), highlight=False)
        if summary.degraded_on:
            err.print(f"  {summary.rule_id}{state}: partly blind on " + "; ".join(summary.degraded_on), highlight=False)
    return 0


@app.command("test")
def test_events(
    events: Annotated[list[Path], typer.Argument(help="Event files: .evtx, JSON lines, JSON export, event XML.")],
    rules: RulesOption = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    show_command_lines: Annotated[
        bool, typer.Option("--show-command-lines", help="Show command lines (they can hold secrets).")
    ] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file.")] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Worker processes for a large replay (16 MiB of input or more): default, one per CPU; 1 stays in "
            "this process.",
        ),
    ] = None,
) -> int:
    """Replay event files through the rules: hits per rule, alerts per day, matched events."""
    if fmt not in ("table", "json"):
        raise UserInputError(f"--format {fmt!r}: use table or json")
    compiled = load_rules(_rules_dir(rules))
    try:
        result = replay.replay(
            events, compiled, show_command_lines=show_command_lines, jobs=jobs or replay.default_jobs()
        )
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted: no report written", style="yellow")
        raise typer.Exit(130) from None
    if fmt == "json":
        text = json.dumps(result.model_dump(mode="json"), indent=2) + "\n"
        if output:
            atomic_write(output, text)
        else:
            typer.echo(text, nl=False)
        return 0
    if output:
        with output.open("w", encoding="utf-8") as handle:
            _print_table(Console(file=handle, width=200), result)
    else:
        _print_table(Console(), result)
    return 0


def _print_table(console: Console, result: replay.ReplayResult, *, show_matches: bool = True) -> None:
    console.print(
        f"{result.events} events read, {result.skipped} skipped (damaged), {result.ignored} other events; "
        f"span {result.first_time} .. {result.last_time} ({result.span_days:.3f} days)"
        + (f"; replayed in {result.processes} processes" if result.processes > 1 else ""),
        highlight=False,
    )
    table = Table(title="Hits per rule")
    for column in ("rule", "enabled", "hits", "alerts/day", "distinct alerts"):
        table.add_column(column)
    for rule in result.rules:
        table.add_row(
            rule.rule_id, str(rule.enabled), str(rule.hits), f"{rule.alerts_per_day:g}", str(rule.distinct_alerts)
        )
    console.print(table)
    if result.matches and show_matches:
        matches = Table(title="Matched events")
        for column in ("rule", "time", "host", "process", "command line"):
            matches.add_column(column, overflow="fold")
        for match in result.matches:
            # Text cells: event data is never read as Rich markup ("[redacted, ...]" would vanish as a tag).
            matches.add_row(
                Text(match.rule_id),
                Text(match.time or ""),
                Text(match.host or ""),
                Text(match.new_process_name or ""),
                Text(match.command_line or ""),
            )
        console.print(matches)
    if result.matches_not_listed and show_matches:
        console.print(f"{result.matches_not_listed} more matches not listed")


@app.command("import-sigma")
def import_sigma_rules(
    sigma_files: Annotated[list[Path], typer.Argument(help="Sigma rule files (process_creation).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the converted rules.")],
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> int:
    """Convert Sigma process_creation rules into procaudit rules (written disabled); report what cannot be expressed."""
    reports = sigma_import.import_sigma(sigma_files, output)
    if fmt == "json":
        typer.echo(json.dumps([r.model_dump(mode="json") for r in reports], indent=2))
        return 0
    table = Table(title="Sigma import")
    for column in ("sigma rule", "result", "not expressible"):
        table.add_column(column, overflow="fold")
    for report in reports:
        result = f"written {report.output}" if report.converted else "not converted"
        table.add_row(report.title or report.source, result, "\n".join(report.unsupported + report.dropped))
    Console().print(table)
    return 0


# --- push and verify-alert: talk to a SCOM management server ----------------------------------------------------

ServerOpt = Annotated[
    str,
    typer.Option("--server", help="The SCOM management server: a host name (or glob) matching one inventory host."),
]
NameOpt = Annotated[str, typer.Option("--name", help="Management pack id.")]


def _one_server(args: ConnectionArgs) -> tuple[Connector, str]:
    session = open_session(args)
    if len(session.targets) != 1:
        names = ", ".join(t.name for t in session.targets[:5]) or "none"
        raise UserInputError(
            f"--server {args.limit!r} matches {len(session.targets)} inventory hosts ({names}); name one"
        )
    target = session.targets[0]
    return session.connect(target), target.name


def _table_or_json(fmt: OutputFormat) -> None:
    if fmt not in (OutputFormat.table, OutputFormat.json):
        raise UserInputError("this command writes table or json")


@app.command(
    "push",
    help="Push the management pack to a SCOM management server over PowerShell Remoting: back up the installed "
    "version, bump it, copy and import the pack, confirm the installed version. Exit codes: 0 installed; 1 refused by "
    "the management group, or pending under --check; 2 usage or input error; 3 server unreachable or script error.",
)
@remoting_options
def push_command(
    inventory: InventoryOpt,
    server: ServerOpt,
    name: NameOpt = mpbuild.DEFAULT_MP_ID,
    version: Annotated[
        str | None, typer.Option("--version", help="Version to install (default: the installed version, bumped).")
    ] = None,
    rules: RulesOption = None,
    backup_dir: Annotated[
        Path, typer.Option("--backup-dir", help="Where to keep the exported backup of the installed pack.")
    ] = Path("mp-backups"),
    check: Annotated[bool, typer.Option("--check", help="Say what would be imported; change nothing.")] = False,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    *,
    remoting: Overrides,
) -> None:
    _table_or_json(fmt)
    compiled = load_rules(_rules_dir(rules))
    args = ConnectionArgs(inventory, server, remoting)
    connector, host = _one_server(args)
    stderr.print(f"{'checking' if check else 'pushing'} {name} on {host} ...", highlight=False)
    try:
        outcome = scom.push(connector, compiled, mp_id=name, version=version, check=check, backup_dir=backup_dir)
    finally:
        connector.close()
    report = scom.PushReport(hosts=[outcome])
    if fmt == OutputFormat.json:
        emit(json.dumps(report.model_dump(mode="json"), indent=2), output)
    else:
        print_rich(_push_table(report), output)
    stderr.print(f"{outcome.host}: {outcome.status}: {outcome.message}", highlight=False)
    raise typer.Exit({"OK": 0, "PENDING": 1, "FAIL": 1}.get(outcome.status, 3))


def _push_table(report: scom.PushReport) -> Table:
    lab = any(h.lab for h in report.hosts)
    table = Table(title="procaudit mp push" + (" - LAB host (a model, not Windows)" if lab else ""))
    for column in ("Server", "Status", "Pack", "Was", "Now", "Server backup", "Local backup", "Message"):
        table.add_column(column, overflow="fold")
    for h in report.hosts:
        colour = {"OK": "green", "PENDING": "yellow"}.get(h.status, "red")
        table.add_row(
            h.host,
            f"[{colour}]{h.status}[/]",
            h.mp_id,
            h.previous_version or "-",
            h.installed_version or h.new_version or "-",
            h.server_backup or "",
            h.local_backup or "",
            h.message,
        )
    return table


@app.command(
    "verify-alert",
    help="Wait for the canary alert of one 'procaudit verify' run (its nonce) on a SCOM management server. "
    "Exit codes: 0 the alert is there; 1 not there in time (or the canary rule is not installed); 2 usage or input "
    "error; 3 server unreachable or script error.",
)
@remoting_options
def verify_alert_command(
    inventory: InventoryOpt,
    server: ServerOpt,
    nonce: Annotated[str, typer.Option("--nonce", help="The run's nonce: 32 lower-case hexadecimal characters.")],
    name: NameOpt = mpbuild.DEFAULT_MP_ID,
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds to wait for the alert.")] = 300.0,
    interval: Annotated[float, typer.Option("--interval", min=1, help="Seconds between two looks.")] = 15.0,
    fmt: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    *,
    remoting: Overrides,
) -> None:
    _table_or_json(fmt)
    scom.check_nonce(nonce)
    args = ConnectionArgs(inventory, server, remoting)
    connector, host = _one_server(args)
    stderr.print(f"looking for the canary alert of run {nonce} on {host} (up to {timeout:g} s) ...", highlight=False)
    try:
        outcome = scom.find_canary_alert(connector, nonce, mp_id=name, timeout=timeout, interval=interval)
    finally:
        connector.close()
    report = scom.AlertReport(hosts=[outcome])
    if fmt == OutputFormat.json:
        emit(json.dumps(report.model_dump(mode="json"), indent=2), output)
    else:
        print_rich(_alert_table(report), output)
    stderr.print(f"{outcome.host}: {outcome.status}: {outcome.message}", highlight=False)
    raise typer.Exit({"PASS": 0, "FAIL": 1}.get(outcome.status, 3))


def _alert_table(report: scom.AlertReport) -> Table:
    lab = any(h.lab for h in report.hosts)
    table = Table(title="procaudit mp verify-alert" + (" - LAB host (a model, not Windows)" if lab else ""))
    for column in ("Server", "Status", "Alerts from", "Raised", "Waited s", "Message"):
        table.add_column(column, overflow="fold")
    for h in report.hosts:
        colour = "green" if h.status == "PASS" else "red"
        table.add_row(
            h.host,
            f"[{colour}]{h.status}[/]",
            ", ".join(sorted({a.computer_name or "?" for a in h.alerts})),
            ", ".join(a.time_raised or "" for a in h.alerts),
            f"{h.waited_s:g}",
            h.message,
        )
    return table
