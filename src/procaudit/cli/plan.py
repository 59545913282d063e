"""``procaudit plan``: the staged rollout, from an inventory and an estimate. Reads files only; no host is contacted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from procaudit.cli.app import EXIT_CODES_HELP, app
from procaudit.cli.estimate import OptionalFormatOpt, pick_format
from procaudit.cli.options import InventoryOpt, LimitOpt, OutputOpt, stderr
from procaudit.errors import UserInputError
from procaudit.estimate.report import load_estimate, primary_group
from procaudit.inventory import load_inventory
from procaudit.report.output import OutputFormat, emit, print_rich
from procaudit.rollout.plan import Plan, PlanSettings, build_plan, estimate_digest
from procaudit.rollout.render import table, to_html
from procaudit.units import format_count, parse_duration


@app.command(
    "plan",
    help="Plan the rollout in waves from an estimate: a canary first, then waves that each add at most "
    "--max-events-per-sec and hold at most --max-hosts; DCs and busy hosts called out. Deterministic. "
    + EXIT_CODES_HELP,
)
def plan_command(
    inventory: InventoryOpt,
    estimate_file: Annotated[
        Path, typer.Option("--estimate", "-e", help="JSON written by 'procaudit estimate -f json'.", show_default=False)
    ],
    canary: Annotated[str, typer.Option("--canary", help="Canary wave: N hosts or P% of the hosts.")] = "1",
    max_events_per_sec: Annotated[
        float, typer.Option("--max-events-per-sec", help="Most events/s (at peak) one wave may add.")
    ] = 50.0,
    max_hosts: Annotated[int, typer.Option("--max-hosts", help="Most hosts in one wave.")] = 50,
    soak: Annotated[str, typer.Option("--soak", help="Wait after each wave before the next: 30m, 2h, ...")] = "30m",
    max_fail_percent: Annotated[
        float, typer.Option("--max-fail-percent", help="A wave stops the rollout when its failures exceed this %.")
    ] = 0.0,
    busy_events_per_day: Annotated[
        float, typer.Option("--busy-events-per-day", help="Hosts at or above this are 'busy' (planned late).")
    ] = 20000.0,
    limit: LimitOpt = None,
    fmt: OptionalFormatOpt = None,
    output: OutputOpt = None,
) -> None:
    chosen = pick_format(fmt, output, (OutputFormat.table, OutputFormat.json, OutputFormat.html))
    if max_events_per_sec <= 0:
        raise UserInputError("--max-events-per-sec must be above 0")
    if max_hosts < 1:
        raise UserInputError("--max-hosts must be at least 1")
    if not 0 <= max_fail_percent <= 100:
        raise UserInputError("--max-fail-percent must be from 0 to 100")
    if busy_events_per_day <= 0:
        raise UserInputError("--busy-events-per-day must be above 0")
    soak_seconds = parse_duration(soak, option="--soak", default_unit="m")
    settings = PlanSettings(
        canary=canary.strip(),
        max_events_per_sec=max_events_per_sec,
        max_hosts=max_hosts,
        soak_seconds=soak_seconds,
        max_fail_percent=max_fail_percent,
        busy_events_per_day=busy_events_per_day,
    )
    try:
        text = estimate_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"--estimate {estimate_file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserInputError(f"--estimate {estimate_file}: not UTF-8 text") from None
    report = load_estimate(str(estimate_file), text)
    inv = load_inventory(inventory)
    for notice in inv.notices:
        stderr.print(f"[yellow]note:[/] {notice}", highlight=False)
    selected = [(h.name, primary_group(h.groups)) for h in inv.select(limit)]
    plan = build_plan(report, selected, settings, estimate_sha256=estimate_digest(text))
    write_plan(plan, chosen, output)
    summary(plan)
    raise typer.Exit(0)


def write_plan(plan: Plan, fmt: OutputFormat, output: Path | None) -> None:
    if fmt == OutputFormat.json:
        emit(plan.to_json(), output)
    elif fmt == OutputFormat.html:
        emit(to_html(plan), output)
    else:
        print_rich(table(plan), output)


def summary(plan: Plan) -> None:
    t = plan.totals
    stderr.print(
        f"{t.hosts} hosts in {t.waves} waves (canary {plan.canary_hosts}); {format_count(t.events_per_sec_peak)} "
        f"events/s at peak in all; {t.log_size_changes} log size change(s)"
        + (f"; {t.volume_unknown} host(s) of unknown volume planned last" if t.volume_unknown else ""),
        highlight=False,
    )
    for note in plan.notes:
        stderr.print(f"[yellow]note:[/] {note}", highlight=False)
