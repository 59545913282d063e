"""Advanced audit policy: the ``auditpol /backup`` CSV (also the GPO ``audit.csv``) and the subcategory table.

Both files share one 7-column layout (MS-GPAC 2.2)::

    Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value

Subcategory names and the Inclusion Setting text are for people and are localized; Windows applies a row by
its GUID and numeric Setting Value, and so do we: 0 no auditing (in a GPO file: not configured), 1 success,
2 failure, 3 success and failure, 4 explicitly none (MS-GPAC; a GPO can write it, ``auditpol /backup`` writes
0 instead). Rows without a GUID are audit options (``Option:CrashOnAuditFail`` ...) and global object-access
SACLs (``FileGlobalSacl``, ``RegistryGlobalSacl``); they are kept apart from the subcategories.

What the real captures in ``shared/data/windows/01_auditpol`` showed:

- ``auditpol /backup`` fills Machine Name, writes upper-case GUIDs and names without the "Audit " prefix and
  ends with four ``Option:`` rows and two ``*GlobalSacl`` rows whose Setting Value is empty.
- Option rows carry their state in the (localizable) Inclusion Setting text: ``Option:FullPrivilegeAuditing,,
  Enabled,,0`` has Setting Value 0 although it is enabled, so the number is not the state for options.
- GPMC's ``audit.csv`` leaves Machine Name empty, writes lower-case GUIDs and "Audit <name>"; some names differ
  from auditpol's ("Audit PNP Activity" for "Plug and Play Events"). Files come with CRLF or LF endings.
- Copies pasted from issue threads are cut after a few rows; they are still valid files, only shorter.
"""

from __future__ import annotations

import csv
import io
from typing import Final

from pydantic import BaseModel, ConfigDict

from procaudit.errors import ParseError
from procaudit.parsers._text import decode_text, normalize_guid

PROCESS_CREATION_GUID: Final = "{0CCE922B-69AE-11D9-BED3-505054503030}"

SETTING_NONE: Final = 0
SETTING_SUCCESS: Final = 1
SETTING_FAILURE: Final = 2
SETTING_SUCCESS_AND_FAILURE: Final = 3
SETTING_FORCE_NONE: Final = 4  # MS-GPAC 2.2.1.3.1: "None" in a GPO file, as opposed to 0 "unchanged"


class Subcategory(BaseModel):
    """One advanced-audit subcategory as Windows names it in English."""

    model_config = ConfigDict(frozen=True)

    guid: str
    name: str
    category: str
    category_guid: str


# Category GUIDs: `auditpol /list /category /v` on a German host (auditpol_list_category_v_de.txt), names
# translated to the English ones `auditpol /get /category:*` prints. Object Access ({6997984A-...}) is
# confirmed independently: `auditpol /list /subcategory:{6997984A-...} /v` lists exactly the GUIDs that the
# English table puts under "Object Access".
CATEGORY_GUIDS: Final[dict[str, str]] = {
    "System": "{69979848-797A-11D9-BED3-505054503030}",
    "Logon/Logoff": "{69979849-797A-11D9-BED3-505054503030}",
    "Object Access": "{6997984A-797A-11D9-BED3-505054503030}",
    "Privilege Use": "{6997984B-797A-11D9-BED3-505054503030}",
    "Detailed Tracking": "{6997984C-797A-11D9-BED3-505054503030}",
    "Policy Change": "{6997984D-797A-11D9-BED3-505054503030}",
    "Account Management": "{6997984E-797A-11D9-BED3-505054503030}",
    "DS Access": "{6997984F-797A-11D9-BED3-505054503030}",
    "Account Logon": "{69979850-797A-11D9-BED3-505054503030}",
}

# The 59 subcategories. GUID and English name pairs come from the real `auditpol /backup` file
# auditpol_backup_simeononsecurity_DESKTOPTEMPLATE.csv (59 rows, {0CCE9210-...} to {0CCE924A-...}); the
# category of each name from the English `auditpol /get /category:*` tables (attackrange DC, Windows 10 1809),
# in the order auditpol prints them. tests/unit/parsers/test_auditpol.py derives the table again from those
# captures and compares. Windows 11 adds "Access Rights" under Logon/Logoff (seen in the Win11 capture), but no
# capture shows its GUID, so it is not in this table: its rows still parse and are keyed by their GUID.
_TABLE: Final[tuple[tuple[str, str, str], ...]] = (
    ("{0CCE9211-69AE-11D9-BED3-505054503030}", "Security System Extension", "System"),
    ("{0CCE9212-69AE-11D9-BED3-505054503030}", "System Integrity", "System"),
    ("{0CCE9213-69AE-11D9-BED3-505054503030}", "IPsec Driver", "System"),
    ("{0CCE9214-69AE-11D9-BED3-505054503030}", "Other System Events", "System"),
    ("{0CCE9210-69AE-11D9-BED3-505054503030}", "Security State Change", "System"),
    ("{0CCE9215-69AE-11D9-BED3-505054503030}", "Logon", "Logon/Logoff"),
    ("{0CCE9216-69AE-11D9-BED3-505054503030}", "Logoff", "Logon/Logoff"),
    ("{0CCE9217-69AE-11D9-BED3-505054503030}", "Account Lockout", "Logon/Logoff"),
    ("{0CCE9218-69AE-11D9-BED3-505054503030}", "IPsec Main Mode", "Logon/Logoff"),
    ("{0CCE9219-69AE-11D9-BED3-505054503030}", "IPsec Quick Mode", "Logon/Logoff"),
    ("{0CCE921A-69AE-11D9-BED3-505054503030}", "IPsec Extended Mode", "Logon/Logoff"),
    ("{0CCE921B-69AE-11D9-BED3-505054503030}", "Special Logon", "Logon/Logoff"),
    ("{0CCE921C-69AE-11D9-BED3-505054503030}", "Other Logon/Logoff Events", "Logon/Logoff"),
    ("{0CCE9243-69AE-11D9-BED3-505054503030}", "Network Policy Server", "Logon/Logoff"),
    ("{0CCE9247-69AE-11D9-BED3-505054503030}", "User / Device Claims", "Logon/Logoff"),
    ("{0CCE9249-69AE-11D9-BED3-505054503030}", "Group Membership", "Logon/Logoff"),
    ("{0CCE921D-69AE-11D9-BED3-505054503030}", "File System", "Object Access"),
    ("{0CCE921E-69AE-11D9-BED3-505054503030}", "Registry", "Object Access"),
    ("{0CCE921F-69AE-11D9-BED3-505054503030}", "Kernel Object", "Object Access"),
    ("{0CCE9220-69AE-11D9-BED3-505054503030}", "SAM", "Object Access"),
    ("{0CCE9221-69AE-11D9-BED3-505054503030}", "Certification Services", "Object Access"),
    ("{0CCE9222-69AE-11D9-BED3-505054503030}", "Application Generated", "Object Access"),
    ("{0CCE9223-69AE-11D9-BED3-505054503030}", "Handle Manipulation", "Object Access"),
    ("{0CCE9224-69AE-11D9-BED3-505054503030}", "File Share", "Object Access"),
    ("{0CCE9225-69AE-11D9-BED3-505054503030}", "Filtering Platform Packet Drop", "Object Access"),
    ("{0CCE9226-69AE-11D9-BED3-505054503030}", "Filtering Platform Connection", "Object Access"),
    ("{0CCE9227-69AE-11D9-BED3-505054503030}", "Other Object Access Events", "Object Access"),
    ("{0CCE9244-69AE-11D9-BED3-505054503030}", "Detailed File Share", "Object Access"),
    ("{0CCE9245-69AE-11D9-BED3-505054503030}", "Removable Storage", "Object Access"),
    ("{0CCE9246-69AE-11D9-BED3-505054503030}", "Central Policy Staging", "Object Access"),
    ("{0CCE9229-69AE-11D9-BED3-505054503030}", "Non Sensitive Privilege Use", "Privilege Use"),
    ("{0CCE922A-69AE-11D9-BED3-505054503030}", "Other Privilege Use Events", "Privilege Use"),
    ("{0CCE9228-69AE-11D9-BED3-505054503030}", "Sensitive Privilege Use", "Privilege Use"),
    (PROCESS_CREATION_GUID, "Process Creation", "Detailed Tracking"),
    ("{0CCE922C-69AE-11D9-BED3-505054503030}", "Process Termination", "Detailed Tracking"),
    ("{0CCE922D-69AE-11D9-BED3-505054503030}", "DPAPI Activity", "Detailed Tracking"),
    ("{0CCE922E-69AE-11D9-BED3-505054503030}", "RPC Events", "Detailed Tracking"),
    ("{0CCE9248-69AE-11D9-BED3-505054503030}", "Plug and Play Events", "Detailed Tracking"),
    ("{0CCE924A-69AE-11D9-BED3-505054503030}", "Token Right Adjusted Events", "Detailed Tracking"),
    ("{0CCE922F-69AE-11D9-BED3-505054503030}", "Audit Policy Change", "Policy Change"),
    ("{0CCE9230-69AE-11D9-BED3-505054503030}", "Authentication Policy Change", "Policy Change"),
    ("{0CCE9231-69AE-11D9-BED3-505054503030}", "Authorization Policy Change", "Policy Change"),
    ("{0CCE9232-69AE-11D9-BED3-505054503030}", "MPSSVC Rule-Level Policy Change", "Policy Change"),
    ("{0CCE9233-69AE-11D9-BED3-505054503030}", "Filtering Platform Policy Change", "Policy Change"),
    ("{0CCE9234-69AE-11D9-BED3-505054503030}", "Other Policy Change Events", "Policy Change"),
    ("{0CCE9236-69AE-11D9-BED3-505054503030}", "Computer Account Management", "Account Management"),
    ("{0CCE9237-69AE-11D9-BED3-505054503030}", "Security Group Management", "Account Management"),
    ("{0CCE9238-69AE-11D9-BED3-505054503030}", "Distribution Group Management", "Account Management"),
    ("{0CCE9239-69AE-11D9-BED3-505054503030}", "Application Group Management", "Account Management"),
    ("{0CCE923A-69AE-11D9-BED3-505054503030}", "Other Account Management Events", "Account Management"),
    ("{0CCE9235-69AE-11D9-BED3-505054503030}", "User Account Management", "Account Management"),
    ("{0CCE923B-69AE-11D9-BED3-505054503030}", "Directory Service Access", "DS Access"),
    ("{0CCE923C-69AE-11D9-BED3-505054503030}", "Directory Service Changes", "DS Access"),
    ("{0CCE923D-69AE-11D9-BED3-505054503030}", "Directory Service Replication", "DS Access"),
    ("{0CCE923E-69AE-11D9-BED3-505054503030}", "Detailed Directory Service Replication", "DS Access"),
    ("{0CCE9240-69AE-11D9-BED3-505054503030}", "Kerberos Service Ticket Operations", "Account Logon"),
    ("{0CCE9241-69AE-11D9-BED3-505054503030}", "Other Account Logon Events", "Account Logon"),
    ("{0CCE9242-69AE-11D9-BED3-505054503030}", "Kerberos Authentication Service", "Account Logon"),
    ("{0CCE923F-69AE-11D9-BED3-505054503030}", "Credential Validation", "Account Logon"),
)

SUBCATEGORIES: Final[dict[str, Subcategory]] = {
    guid: Subcategory(guid=guid, name=name, category=category, category_guid=CATEGORY_GUIDS[category])
    for guid, name, category in _TABLE
}

# Legacy ("basic") audit policy: the nine [Event Audit] keys of a security template (MS-GPSB 2.2.4) and the
# category each one sets. Applying a legacy category writes every subcategory in it (MS-GPSB 3.2.5.6), so
# "Audit process tracking" overwrites Process Creation unless SCENoApplyLegacyAuditPolicy=1.
LEGACY_CATEGORIES: Final[dict[str, str]] = {
    "AuditSystemEvents": "System",
    "AuditLogonEvents": "Logon/Logoff",
    "AuditObjectAccess": "Object Access",
    "AuditPrivilegeUse": "Privilege Use",
    "AuditProcessTracking": "Detailed Tracking",
    "AuditPolicyChange": "Policy Change",
    "AuditAccountManage": "Account Management",
    "AuditDSAccess": "DS Access",
    "AuditAccountLogon": "Account Logon",
}


def subcategory(guid: str) -> Subcategory | None:
    """The known subcategory for ``guid`` in any case, with or without braces; ``None`` if unknown."""
    key = normalize_guid(guid)
    return SUBCATEGORIES.get(key) if key else None


def category_subcategories(category: str) -> tuple[str, ...]:
    """GUIDs of the known subcategories in an English category name (``"Detailed Tracking"``)."""
    return tuple(s.guid for s in SUBCATEGORIES.values() if s.category == category)


def legacy_category_subcategories(key: str) -> tuple[str, ...]:
    """GUIDs a legacy category key (``AuditProcessTracking``; any case) overwrites; empty if unknown."""
    for name, category in LEGACY_CATEGORIES.items():
        if name.lower() == key.lower():
            return category_subcategories(category)
    return ()


def includes_success(setting_value: int) -> bool:
    """Whether an advanced-audit Setting Value audits success."""
    return setting_value in (SETTING_SUCCESS, SETTING_SUCCESS_AND_FAILURE)


def includes_failure(setting_value: int) -> bool:
    """Whether an advanced-audit Setting Value audits failure."""
    return setting_value in (SETTING_FAILURE, SETTING_SUCCESS_AND_FAILURE)


class SubcategoryRow(BaseModel):
    """A subcategory row. ``name`` and ``inclusion_setting`` are as written (localized): display only."""

    model_config = ConfigDict(frozen=True)

    line: int
    machine_name: str
    policy_target: str
    name: str
    guid: str
    inclusion_setting: str
    exclusion_setting: str
    setting_value: int

    @property
    def success(self) -> bool:
        return includes_success(self.setting_value)

    @property
    def failure(self) -> bool:
        return includes_failure(self.setting_value)


class OptionRow(BaseModel):
    """An ``Option:<Name>`` row. ``enabled`` is ``None`` when the row does not tell."""

    model_config = ConfigDict(frozen=True)

    line: int
    machine_name: str
    name: str
    inclusion_setting: str
    setting_value: int | None
    enabled: bool | None


class GlobalSaclRow(BaseModel):
    """A global object-access SACL row (``FileGlobalSacl``, ``RegistryGlobalSacl``); empty when none is set."""

    model_config = ConfigDict(frozen=True)

    line: int
    machine_name: str
    name: str
    inclusion_setting: str
    exclusion_setting: str
    setting_value: str


class AuditCsv(BaseModel):
    """A parsed ``auditpol /backup`` file or GPO ``audit.csv``, keyed by upper-case braced GUID."""

    model_config = ConfigDict(frozen=True)

    has_header: bool
    machine_name: str | None
    subcategories: dict[str, SubcategoryRow]
    per_user: tuple[SubcategoryRow, ...]
    options: dict[str, OptionRow]
    global_sacls: dict[str, GlobalSaclRow]
    truncated_at_line: int | None = None
    """Line of a last row cut off in mid-line (text without a final line break); it was left out."""

    def row(self, guid: str) -> SubcategoryRow | None:
        key = normalize_guid(guid)
        return self.subcategories.get(key) if key else None

    def setting(self, guid: str) -> int | None:
        """The Setting Value of subcategory ``guid``, ``None`` when the file has no row for it."""
        found = self.row(guid)
        return found.setting_value if found else None

    @property
    def process_creation(self) -> SubcategoryRow | None:
        return self.subcategories.get(PROCESS_CREATION_GUID)

    def missing_known(self) -> list[str]:
        """Known subcategory GUIDs without a row: all of them is normal for a GPO file, none for a backup."""
        return [guid for guid in SUBCATEGORIES if guid not in self.subcategories]


HEADER: Final = (
    "Machine Name",
    "Policy Target",
    "Subcategory",
    "Subcategory GUID",
    "Inclusion Setting",
    "Exclusion Setting",
    "Setting Value",
)
_SOURCE = "audit policy CSV (auditpol /backup or GPO audit.csv)"
_GET_R_MESSAGE = (
    "6 fields: this looks like `auditpol /get /r` output, which has no Setting Value column; "
    "parse `auditpol /backup` output instead"
)


def parse_audit_csv(data: str | bytes, *, source: str = _SOURCE) -> AuditCsv:
    """Parse ``auditpol /backup`` output or a GPO ``audit.csv``.

    Accepts a BOM, CRLF or LF, quoted fields, blank lines, localized names and files cut after any complete
    row. A last row cut in mid-line (no final line break) is left out and reported in ``truncated_at_line``.

    Raises:
        ParseError: with the line number, when a row is not a 7-field audit row (wrong field count, a bad
            GUID, a Setting Value that is no number), when a GUID repeats, or when the text is
            ``auditpol /get /r`` output (6 columns, no Setting Value).
    """
    text = decode_text(data, source=source)
    rows = _read_rows(text, source)
    ends_cleanly = text.endswith(("\n", "\r"))

    has_header = False
    if rows and _is_header(rows[0][1]):
        if len(rows[0][1]) != len(HEADER):
            raise ParseError(_GET_R_MESSAGE, source=source, line=rows[0][0])
        has_header = True
        rows = rows[1:]

    subcategories: dict[str, SubcategoryRow] = {}
    per_user: list[SubcategoryRow] = []
    options: dict[str, OptionRow] = {}
    sacls: dict[str, GlobalSaclRow] = {}
    machine_names: list[str] = []
    truncated_at: int | None = None

    for index, (line, fields) in enumerate(rows):
        is_last = index == len(rows) - 1
        try:
            parsed = _parse_row(line, fields, source)
        except ParseError:
            if is_last and not ends_cleanly:
                truncated_at = line
                break
            raise
        if parsed.machine_name:
            machine_names.append(parsed.machine_name)
        if isinstance(parsed, SubcategoryRow):
            if parsed.policy_target.upper().startswith("S-1-"):
                per_user.append(parsed)
                continue
            if parsed.guid in subcategories:
                first = subcategories[parsed.guid].line
                raise ParseError(
                    f"subcategory {parsed.guid} appears twice (first on line {first})", source=source, line=line
                )
            subcategories[parsed.guid] = parsed
        elif isinstance(parsed, OptionRow):
            options[parsed.name] = parsed
        else:
            sacls[parsed.name] = parsed

    return AuditCsv(
        has_header=has_header,
        machine_name=machine_names[0] if machine_names else None,
        subcategories=subcategories,
        per_user=tuple(per_user),
        options=options,
        global_sacls=sacls,
        truncated_at_line=truncated_at,
    )


def _read_rows(text: str, source: str) -> list[tuple[int, list[str]]]:
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:
            raise ParseError(f"not valid CSV: {exc}", source=source, line=reader.line_num) from exc
        if not fields or all(not f.strip() for f in fields):
            continue
        # reader.line_num counts physical lines read so far, i.e. the last line of this row.
        rows.append((reader.line_num, fields))


def _is_header(fields: list[str]) -> bool:
    # The header text may be localized; a header is a first row whose GUID and value columns hold no data.
    if len(fields) == len(HEADER) - 1 and normalize_guid(fields[3]) is None:
        return True  # the `auditpol /get /r` header: the caller rejects it with a clear message
    return len(fields) == len(HEADER) and normalize_guid(fields[3]) is None and not fields[6].strip().isdigit()


def _parse_row(line: int, fields: list[str], source: str) -> SubcategoryRow | OptionRow | GlobalSaclRow:
    if len(fields) == len(HEADER) - 1:
        raise ParseError(_GET_R_MESSAGE, source=source, line=line)
    if len(fields) != len(HEADER):
        raise ParseError(
            f"expected {len(HEADER)} comma-separated fields, found {len(fields)}", source=source, line=line
        )
    machine, target, name, guid_text, inclusion, exclusion, value_text = (f.strip() for f in fields)

    if not guid_text:
        if name.lower().startswith("option:"):
            value = _int_or_none(value_text, line, source)
            return OptionRow(
                line=line,
                machine_name=machine,
                name=name.split(":", 1)[1],
                inclusion_setting=inclusion,
                setting_value=value,
                enabled=_option_enabled(inclusion, value),
            )
        if name.lower().endswith("globalsacl"):
            return GlobalSaclRow(
                line=line,
                machine_name=machine,
                name=name,
                inclusion_setting=inclusion,
                exclusion_setting=exclusion,
                setting_value=value_text,
            )
        raise ParseError(
            f"row {name!r} has no Subcategory GUID and is neither an Option: nor a GlobalSacl row",
            source=source,
            line=line,
        )

    guid = normalize_guid(guid_text)
    if guid is None:
        raise ParseError(f"{guid_text!r} is not a GUID", source=source, line=line)
    value = _int_or_none(value_text, line, source)
    if value is None:
        raise ParseError(f"subcategory {guid} has no Setting Value", source=source, line=line)
    if not target.upper().startswith("S-1-") and value > SETTING_FORCE_NONE:
        raise ParseError(f"Setting Value {value} is not one of 0-4", source=source, line=line)
    return SubcategoryRow(
        line=line,
        machine_name=machine,
        policy_target=target,
        name=name,
        guid=guid,
        inclusion_setting=inclusion,
        exclusion_setting=exclusion,
        setting_value=value,
    )


def _int_or_none(text: str, line: int, source: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise ParseError(f"Setting Value {text!r} is not a number", source=source, line=line)
    return int(text)


def _option_enabled(inclusion: str, value: int | None) -> bool | None:
    # auditpol /backup writes 0 for enabled options too (FullPrivilegeAuditing,,Enabled,,0 in a real backup),
    # so the English text decides; a non-zero value (GPO files) means enabled. Other text: cannot tell.
    word = inclusion.strip().lower()
    if word == "enabled":
        return True
    if word == "disabled":
        return False
    if value:
        return True
    return None
