"""The procaudit GPO: render it as a GPO backup for Import-GPO, and read/write registry.pol files."""

from __future__ import annotations

from procaudit.gpo.errors import GpoSettingsError, OutputDirError, PolFileError
from procaudit.gpo.polfile import ControlCode, PolEntry, RegType, decode_pol, encode_pol, read_pol, write_pol
from procaudit.gpo.render import GpoBackup, GpoIds, render_gpo_backup
from procaudit.gpo.settings import GpoSettings, parse_log_size

__all__ = [
    "ControlCode",
    "GpoBackup",
    "GpoIds",
    "GpoSettings",
    "GpoSettingsError",
    "OutputDirError",
    "PolEntry",
    "PolFileError",
    "RegType",
    "decode_pol",
    "encode_pol",
    "parse_log_size",
    "read_pol",
    "render_gpo_backup",
    "write_pol",
]
