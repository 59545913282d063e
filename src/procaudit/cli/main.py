"""The ``procaudit`` command line: registers every command and maps errors to exit codes.

Exit codes (every command):
  0  everything checked is fine
  1  at least one FAIL finding (or pending changes under --check)
  2  usage or input error (bad option, malformed inventory/rules/event file)
  3  at least one host unreachable or in ERROR
  4  a rollout gate stopped the deployment
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text

from procaudit.cli import check, demo, deploy, estimate, lab, ping, plan  # noqa: F401  (modules register their commands on the app)
from procaudit.cli.app import app
from procaudit.cli.gpo import app as gpo_app
from procaudit.cli.mp import app as mp_app
from procaudit.errors import ProcauditError, UserInputError

app.add_typer(gpo_app, name="gpo")
app.add_typer(mp_app, name="mp")

stderr = Console(stderr=True)


def fail(message: str) -> None:
    """Print one error line on stderr (no markup interpretation of the message)."""
    stderr.print(Text.assemble(("error: ", "bold red"), message))


def main() -> None:
    """Entry point. Typer handles usage errors (exit 2); procaudit's own errors become one clear line."""
    try:
        app()
    except ProcauditError as exc:
        fail(str(exc))
        sys.exit(2 if isinstance(exc, UserInputError) else 3)
    except KeyboardInterrupt:
        stderr.print("interrupted", style="yellow")
        sys.exit(130)
    except SystemExit as exc:
        # Typer ends a Ctrl-C that no command handled with a silent exit 130 (chained from the KeyboardInterrupt);
        # say it, as the commands that handle it do.
        if exc.code == 130 and isinstance(getattr(exc.__context__, "__cause__", None), KeyboardInterrupt):
            stderr.print("interrupted", style="yellow")
        raise
