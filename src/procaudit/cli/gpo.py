"""``procaudit gpo ...``: the domain GPO that carries the process-creation auditing settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from procaudit.gpo.errors import GpoSettingsError
from procaudit.gpo.render import GpoIds, render_gpo_backup
from procaudit.gpo.settings import DEFAULT_DISPLAY_NAME, PLACEHOLDER_DOMAIN, GpoSettings

app = typer.Typer(
    help="Render the procaudit GPO as a GPO backup for Import-GPO.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_stderr = Console(stderr=True, highlight=False, soft_wrap=True)


@app.callback()
def gpo() -> None:
    """The domain GPO that switches on process-creation auditing with command lines."""


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise GpoSettingsError(f"--backup-time: {text!r} is not an ISO 8601 time such as 2024-05-01T12:00:00") from None
    return moment.replace(microsecond=0)


@app.command("render")
def render(
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Backup root to write (the folder you give Import-GPO -Path); created if missing."
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="GPO display name.")] = DEFAULT_DISPLAY_NAME,
    domain: Annotated[
        str,
        typer.Option(
            "--domain",
            help="DNS domain recorded in the backup as its source. Import-GPO imports into the domain it runs "
            "against; the default is a reserved placeholder that can never be a real domain.",
        ),
    ] = PLACEHOLDER_DOMAIN,
    log_size: Annotated[
        str | None,
        typer.Option(
            "--log-size",
            help="Also set the Security log maximum size, e.g. 196608KB, 192MB or 1GB (20 MB to 2 TB).",
        ),
    ] = None,
    include_failure: Annotated[
        bool, typer.Option("--include-failure", help="Audit failed process creation too (Success and Failure).")
    ] = False,
    deterministic: Annotated[
        bool,
        typer.Option(
            "--deterministic",
            help="Derive the GPO GUID and backup ID from the settings (same settings, same folder) "
            "instead of fresh random ones.",
        ),
    ] = False,
    backup_time: Annotated[
        str | None,
        typer.Option("--backup-time", help="BackupTime to record (ISO 8601; default: now, UTC)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Write into a non-empty output folder (same-named files are replaced)."),
    ] = False,
) -> None:
    """Write the GPO backup: Process Creation auditing, command lines in 4688, forced subcategory policy."""
    settings = GpoSettings.from_user(
        display_name=name, domain=domain, include_failure=include_failure, log_size=log_size
    )
    moment = _parse_time(backup_time) if backup_time is not None else datetime.now(UTC).replace(microsecond=0)
    ids = GpoIds.derived(settings) if deterministic else GpoIds.fresh()
    backup = render_gpo_backup(settings, output, ids=ids, backup_time=moment, force=force)

    _stderr.print(Text(f"Wrote GPO backup {backup.backup_id} ({backup.display_name!r}) to {backup.backup_root}:"))
    for path in backup.files:
        _stderr.print(Text(f"  {path.relative_to(backup.backup_root)}"))
    others = sorted(p.name for p in backup.backup_root.iterdir() if p.name != backup.backup_id)
    if others:
        _stderr.print(
            Text(
                f"note: {backup.backup_root} also holds {', '.join(others)}; import by -BackupId, not by name.",
                style="yellow",
            )
        )
    _stderr.print(Text("Once imported and linked, the GPO does this:"))
    for line in backup.summary:
        _stderr.print(Text(f"  - {line}"))
    _stderr.print(Text("Import it on a domain controller (after copying the backup root there):"))
    _stderr.print(Text(f"  {backup.import_command}"))
