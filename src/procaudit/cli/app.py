"""The Typer application every command module registers on."""

from __future__ import annotations

import typer

EXIT_CODES_HELP = (
    "Exit codes: 0 all good; 1 a FAIL finding or pending change; 2 usage or input error; "
    "3 a host unreachable or in ERROR; 4 a rollout gate stopped the deployment; 130 interrupted (Ctrl-C)."
)

app = typer.Typer(
    name="procaudit",
    help="Readiness, rollout and detections for Windows process-creation auditing (4688 with command line).\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
