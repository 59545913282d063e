"""Lab implementation of deploy/Set-ProcAuditSettings.ps1 (the direct strategy) and of the policy refresh.

``Set-ProcAuditSettings`` changes the modelled host as the script changes Windows: ``auditpol /set`` writes
the effective (LSA) subcategory value, the two owned registry values are set or deleted, ``wevtutil sl``
sets the Security log's maximum size. Nothing touches the policy sources (local or domain GPO), so a
domain GPO that delivers another value puts it back at the next refresh (``LabHost.refresh_policy``). The
parameter validation PowerShell does before the script runs (``ValidatePattern``, ``ValidateRange``,
``Mandatory``) is reproduced with Windows PowerShell's messages.
"""

from __future__ import annotations

import re
from typing import Any, Final

from procaudit.lab import eventlog, wintext
from procaudit.lab.model import AUDIT_KEY, CMDLINE_VALUE, FORCE_VALUE, LSA_KEY, LabHost
from procaudit.lab.scripts import HandlerContext, handles, ps_json
from procaudit.lab.wsman import ScriptOutcome, ScriptRun
from procaudit.parsers.auditpol import SUBCATEGORIES

ITEM_PATTERN: Final = (
    r"^(Subcategory:\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}|"
    r"Registry:(SCENoApplyLegacyAuditPolicy|ProcessCreationIncludeCmdLine_Enabled)|SecurityLogMaxSizeKB)$"
)
_OWNED_KEYS: Final = {FORCE_VALUE: LSA_KEY, CMDLINE_VALUE: AUDIT_KEY}


class ParameterError(Exception):
    """A parameter binding failure, worded as Windows PowerShell words it."""


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def mandatory(run: ScriptRun, name: str) -> Any:
    if name not in run.parameters or run.parameters[name] is None:
        raise ParameterError(
            f"Cannot bind argument to parameter '{name}' because it is null."
            if name in run.parameters
            else f"Cannot process command because of one or more missing mandatory parameters: {name}."
        )
    return run.parameters[name]


def validate_pattern(name: str, values: list[Any], pattern: str) -> list[str]:
    # PowerShell's -match is case-insensitive, and so is ValidatePattern.
    for value in values:
        if not re.match(pattern, str(value), re.IGNORECASE):
            raise ParameterError(
                f"Cannot validate argument on parameter '{name}'. The argument \"{value}\" does not match the "
                f'"{pattern}" pattern. Supply an argument that matches "{pattern}" and try the command again.'
            )
    return [str(v) for v in values]


def validate_range(name: str, values: list[Any], low: int, high: int) -> list[int]:
    numbers = []
    for value in values:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ParameterError(
                f"Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{value}\" "
                'to type "System.Int32". Error: "Input string was not in a correct format."'
            ) from None
        if number < low:
            raise ParameterError(
                f"Cannot validate argument on parameter '{name}'. The {number} argument is less than the minimum "
                f"allowed range of {low}. Supply an argument that is greater than or equal to {low} and then try "
                "the command again."
            )
        if number > high:
            raise ParameterError(
                f"Cannot validate argument on parameter '{name}'. The {number} argument is greater than the "
                f"maximum allowed range of {high}. Supply an argument that is less than or equal to {high} and "
                "then try the command again."
            )
        numbers.append(number)
    return numbers


def what_if(run: ScriptRun) -> bool:
    return bool(run.parameters.get("WhatIf"))


def registry_value(host: LabHost, key: str, name: str) -> dict[str, Any]:
    value = host.registry.get(key, {}).get(name)
    kind = None if value is None else ("DWord" if isinstance(value, int) else "String")
    return {"Key": key, "Name": name, "Value": value, "Kind": kind}


@handles("Set-ProcAuditSettings")
def _set_settings(ctx: HandlerContext, run: ScriptRun) -> ScriptOutcome:
    host = ctx.host
    try:
        items = validate_pattern("Item", as_list(mandatory(run, "Item")), ITEM_PATTERN)
        values = validate_range("Value", as_list(mandatory(run, "Value")), -1, 2147483647)
    except ParameterError as exc:
        return ScriptOutcome(failure=str(exc))
    if len(items) != len(values):
        return ScriptOutcome(failure=f"Item and Value must pair up: {len(items)} items, {len(values)} values")
    applied: list[str] = []
    skip = what_if(run)
    failure = None
    for item, number in zip(items, values, strict=True):
        kind, _, name = item.partition(":")
        if kind.lower() == "subcategory":
            if not 0 <= number <= 3:
                failure = f"{item} takes 0 to 3, not {number}"
                break
            guid = name.upper()
            if guid not in SUBCATEGORIES:
                # auditpol.exe rejects a GUID it does not know, whatever the language.
                failure = (
                    f"auditpol.exe /set /subcategory:{name} exited with code 87; Error 0x00000057 occurred: "
                    "The parameter is incorrect."
                )
                break
            if not skip:
                host.policy.lsa[guid] = number
        elif kind.lower() == "registry":
            if not -1 <= number <= 1:
                failure = f"{item} takes 0 or 1 (or -1 to delete), not {number}"
                break
            owned = next(n for n in _OWNED_KEYS if n.lower() == name.lower())
            if not skip:
                values_of_key = host.registry.setdefault(_OWNED_KEYS[owned], {})
                if number == -1:
                    values_of_key.pop(owned, None)
                else:
                    values_of_key[owned] = number
        else:
            if number < 1024:
                failure = f"SecurityLogMaxSizeKB must be at least 1024 (1 MB), not {number}"
                break
            if not skip:
                host.security_log.max_size = number * 1024
        if not skip:
            applied.append(item)
    eventlog.note_state_change(host)
    if failure is not None:
        return ScriptOutcome(failure=failure)
    return ScriptOutcome(
        output=[
            ps_json(
                {
                    "ComputerName": host.os.computer_name,
                    "Applied": applied,
                    "WhatIf": skip,
                    "AuditPolicyCsv": wintext.auditpol_backup(host),
                    "Registry": [
                        registry_value(host, AUDIT_KEY, CMDLINE_VALUE),
                        registry_value(host, LSA_KEY, FORCE_VALUE),
                    ],
                    "SecurityChannel": wintext.wevtutil_gl_security(host),
                }
            )
        ]
    )
