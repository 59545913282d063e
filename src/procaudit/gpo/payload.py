"""A GPO's payload files read back into the settings they apply: what a GPO (or a backup of one) actually does.

``deploy --strategy gpo`` compares the GPO already in the domain with the one it would import through this
(same settings: no import, so a second deployment changes nothing), and the lab models what an imported GPO
applies to its computers with it. Three files matter (paths below the GPO's ``Machine`` folder, and below
``DomainSysvol\\GPO\\Machine`` in a backup):

* ``registry.pol`` (PReg, our own reader): registry values under HKLM; ``**del.<name>`` deletes one.
* ``microsoft\\windows nt\\Audit\\audit.csv``: advanced audit policy, GUID -> Setting Value (0 rows: not set).
* ``microsoft\\windows nt\\SecEdit\\GptTmpl.inf``: ``[Registry Values]`` (SCENoApplyLegacyAuditPolicy ...) and
  ``[Event Audit]`` (legacy categories).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Final

from pydantic import BaseModel, ConfigDict

from procaudit.errors import ParseError
from procaudit.gpo.errors import PolFileError
from procaudit.gpo.polfile import ControlCode, RegType, decode_pol
from procaudit.parsers.auditpol import parse_audit_csv
from procaudit.parsers.secedit import parse_security_template

REGISTRY_POL: Final = "registry.pol"
AUDIT_CSV: Final = "microsoft\\windows nt\\Audit\\audit.csv"
GPTTMPL_INF: Final = "microsoft\\windows nt\\SecEdit\\GptTmpl.inf"
PAYLOAD_FILES: Final = (REGISTRY_POL, AUDIT_CSV, GPTTMPL_INF)
BACKUP_MACHINE: Final = "DomainSysvol\\GPO\\Machine\\"


class PayloadError(ParseError):
    """A payload file is not what its format says."""


class GpoPayload(BaseModel):
    """The computer settings of a GPO. Registry keys are ``HKLM\\<path>`` as written in the file."""

    model_config = ConfigDict(frozen=True)

    audit: dict[str, int] = {}
    """Upper-case braced subcategory GUID -> Setting Value (1 success, 2 failure, 3 both, 4 none)."""
    registry: dict[tuple[str, str], int | str] = {}
    """(``HKLM\\key``, value name) -> data, from registry.pol."""
    deleted: tuple[tuple[str, str], ...] = ()
    """(``HKLM\\key``, value name) that registry.pol deletes (``**del.``)."""
    security_registry: dict[str, int | str] = {}
    """GptTmpl.inf ``[Registry Values]``: ``MACHINE\\...\\Name`` -> data."""
    legacy: dict[str, int] = {}
    """GptTmpl.inf ``[Event Audit]``."""

    def comparable(self) -> dict[str, object]:
        """A case-insensitive view for comparing two GPOs' settings."""
        return {
            "audit": dict(sorted(self.audit.items())),
            "registry": sorted((k.lower(), n.lower(), str(v)) for (k, n), v in self.registry.items()),
            "deleted": sorted((k.lower(), n.lower()) for k, n in self.deleted),
            "security_registry": sorted((k.lower(), str(v)) for k, v in self.security_registry.items()),
            "legacy": sorted((k.lower(), v) for k, v in self.legacy.items()),
        }

    def same_settings(self, other: GpoPayload) -> bool:
        return self.comparable() == other.comparable()


def normalize_relative(path: str) -> str:
    """A payload path below ``Machine``, backslashes, in canonical case (``registry.pol`` ...)."""
    text = path.replace("/", "\\").lstrip("\\")
    if text.lower().startswith(BACKUP_MACHINE.lower()):
        text = text[len(BACKUP_MACHINE) :]
    for known in PAYLOAD_FILES:
        if text.lower() == known.lower():
            return known
    return text


def read_payload(files: Mapping[str, bytes]) -> GpoPayload:
    """The settings in a GPO's payload files (relative paths as in ``PAYLOAD_FILES``; absent files set nothing).

    Raises:
        PayloadError: a file cannot be parsed; the message names it.
    """
    by_name = {normalize_relative(k): v for k, v in files.items()}
    audit: dict[str, int] = {}
    registry: dict[tuple[str, str], int | str] = {}
    deleted: list[tuple[str, str]] = []
    security: dict[str, int | str] = {}
    legacy: dict[str, int] = {}
    if REGISTRY_POL in by_name:
        try:
            for entry in decode_pol(by_name[REGISTRY_POL], source=REGISTRY_POL):
                key = "HKLM\\" + entry.key
                code = entry.control
                if code is ControlCode.DELETE_VALUE and entry.target_name:
                    deleted.append((key, entry.target_name))
                elif code is None and entry.type in (RegType.REG_DWORD, RegType.REG_SZ, RegType.REG_QWORD):
                    value = entry.value
                    if isinstance(value, int | str):
                        registry[(key, entry.value_name)] = value
        except PolFileError as exc:
            raise PayloadError(str(exc), source=REGISTRY_POL) from None
    if AUDIT_CSV in by_name:
        parsed = parse_audit_csv(by_name[AUDIT_CSV], source=AUDIT_CSV)
        audit = {guid: row.setting_value for guid, row in parsed.subcategories.items() if row.setting_value}
    if GPTTMPL_INF in by_name:
        template = parse_security_template(by_name[GPTTMPL_INF], source=GPTTMPL_INF)
        for path, reg in template.registry_values().items():
            number = reg.as_int()
            security[path] = number if number is not None else reg.as_text()
        legacy = template.event_audit()
    return GpoPayload(audit=audit, registry=registry, deleted=tuple(deleted), security_registry=security, legacy=legacy)


def decode_files(encoded: Mapping[str, str]) -> dict[str, bytes]:
    """Base64 file contents (as a script returns them) -> bytes."""
    return {name: base64.b64decode(text) for name, text in encoded.items()}
