"""The golden cases of the rendered GPO backup, shared by the test and by regen_golden.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from procaudit.gpo.render import GpoIds
from procaudit.gpo.settings import GpoSettings

GOLDEN_DIR = Path(__file__).resolve().parent
BACKUP_TIME = datetime(2024, 5, 1, 12, 0, 0)


class Case(NamedTuple):
    settings: GpoSettings
    ids: GpoIds


_FULL = GpoSettings(
    display_name="Überwachung: Prozesserstellung ]]> & <Kommandozeile>",
    domain="corp.example.com",
    include_failure=True,
    security_log_max_kb=1048576,
)

CASES: dict[str, Case] = {
    # Defaults, fixed GUIDs.
    "default": Case(
        GpoSettings(),
        GpoIds(
            gpo_guid=uuid.UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
            backup_id=uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
        ),
    ),
    # Every option, with the ids --deterministic derives (so a change to the derivation shows up here).
    "full": Case(_FULL, GpoIds.derived(_FULL)),
}
