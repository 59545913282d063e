"""Lab implementation of deploy/Set-ProcAuditSettings.ps1 (the direct strategy) and of the policy refresh.

``Set-ProcAuditSettings`` changes the modelled host as the script changes Windows: ``auditpol /set`` writes
the effective (LSA) subcategory value, the two owned registry values are set or deleted, ``wevtutil sl``
sets the Security log's maximum size. Nothing touches the policy sources (local or domain GPO), so a
domain GPO that delivers another value puts it back at the next refresh (``LabHost.refresh_policy``). The
parameter validation PowerShell does before the script runs (``ValidatePattern``, ``ValidateRange``,
``Mandatory``) is reproduced with Windows PowerShell's messages.
"""

from __future__ import annotations

from typing import Any, Final

from procaudit.lab import eventlog, wintext
from procaudit.lab.handlers.common import BindingError, as_list, mandatory, validate_pattern, validate_range, what_if
from procaudit.lab.model import AUDIT_KEY, CMDLINE_VALUE, FORCE_VALUE, LSA_KEY, LabHost
from procaudit.lab.scripts import HandlerContext, handles, ps_json
from procaudit.lab.wsman import ScriptOutcome, ScriptRun
from procaudit.parsers.auditpol import SUBCATEGORIES

ITEM_PATTERN: Final = (
    r"^(Subcategory:\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}|"
    r"Registry:(SCENoApplyLegacyAuditPolicy|ProcessCreationIncludeCmdLine_Enabled)|SecurityLogMaxSizeKB)$"
)
_OWNED_KEYS: Final = {FORCE_VALUE: LSA_KEY, CMDLINE_VALUE: AUDIT_KEY}


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
    except BindingError as exc:
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
