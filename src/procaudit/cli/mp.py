"""``procaudit mp``: build the detection management pack, replay events through the rules, import Sigma rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from procaudit.content import content_path
from procaudit.detections import mpbuild, replay, sigma_import
from procaudit.detections.rules import load_rules
from procaudit.errors import UserInputError
from procaudit.fsutil import atomic_write

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
) -> int:
    """Replay event files through the rules: hits per rule, alerts per day, matched events."""
    if fmt not in ("table", "json"):
        raise UserInputError(f"--format {fmt!r}: use table or json")
    compiled = load_rules(_rules_dir(rules))
    result = replay.replay(events, compiled, show_command_lines=show_command_lines)
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


def _print_table(console: Console, result: replay.ReplayResult) -> None:
    console.print(
        f"{result.events} events read, {result.skipped} skipped (damaged), {result.ignored} other events; "
        f"span {result.first_time} .. {result.last_time} ({result.span_days:.3f} days)",
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
    if result.matches:
        matches = Table(title="Matched events")
        for column in ("rule", "time", "host", "process", "command line"):
            matches.add_column(column, overflow="fold")
        for match in result.matches:
            matches.add_row(
                match.rule_id,
                match.time or "",
                match.host or "",
                match.new_process_name or "",
                match.command_line or "",
            )
        console.print(matches)
    if result.matches_not_listed:
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
