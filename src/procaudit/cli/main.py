"""The ``procaudit`` command line.

Exit codes (every command):
  0  everything checked is fine
  1  at least one FAIL finding (or pending changes under --check)
  2  usage or input error (bad option, malformed inventory/rules/event file)
  3  at least one host unreachable or in ERROR
  4  a rollout gate stopped the deployment
"""

from __future__ import annotations

import sys

import click
import typer
from rich.console import Console
from rich.text import Text

from procaudit.cli.mp import app as mp_app
from procaudit.errors import ProcauditError, UserInputError

EXIT_CODES_HELP = (
    "Exit codes: 0 all good; 1 a FAIL finding or pending change; 2 usage or input error; "
    "3 a host unreachable or in ERROR; 4 a rollout gate stopped the deployment."
)

app = typer.Typer(
    name="procaudit",
    help="Readiness, rollout and detections for Windows process-creation auditing (4688 with command line).\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.add_typer(mp_app, name="mp")

stderr = Console(stderr=True)


def fail(message: str) -> None:
    """Print one error line on stderr (no markup interpretation of the message)."""
    stderr.print(Text.assemble(("error: ", "bold red"), message))


def main() -> None:
    """Entry point: run the app, turning procaudit's own errors into one clear line and an exit code."""
    try:
        code = app(standalone_mode=False)
    except ProcauditError as exc:
        fail(str(exc))
        sys.exit(2 if isinstance(exc, UserInputError) else 3)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        stderr.print("interrupted", style="yellow")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
