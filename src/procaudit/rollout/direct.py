"""The direct strategy on one host: read facts, apply an ordered list of changes, read back what they became.

``deploy/Set-ProcAuditSettings.ps1`` applies the changes in the order given (``Item``/``Value`` pairs bound
as PSRP parameters) and returns the raw material to verify them - ``auditpol /backup``, the two registry
values it may write, ``wevtutil gl Security`` - which is parsed here with the same parsers as the probe's.
Rollback uses the same script with the journalled before-values (``-1`` deletes a registry value that did not
exist before).
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from procaudit.errors import ParseError
from procaudit.facts import (
    AUDIT_KEY,
    CMDLINE_VALUE,
    FORCE_VALUE,
    GET_PROCAUDIT_FACTS,
    LSA_KEY,
    HostFacts,
    ProbeParams,
    ProbeRegistryValue,
    facts_from_probe,
)
from procaudit.parsers.auditpol import parse_audit_csv
from procaudit.parsers.wevtutil import parse_wevtutil_gl
from procaudit.remote import ScriptParams, ScriptResult, ScriptSpec
from procaudit.rollout.operations import LOG_SIZE_ITEM, Change, format_value, item_label
from procaudit.transport.base import Connector

# The probe, cheaply: deploy reads settings and their sources, not event counts.
DEPLOY_PROBE: Final = ProbeParams(window_hours=1, max_events=1)
DELETE: Final = -1


class SettingsParams(ScriptParams):
    item: tuple[str, ...] = Field(min_length=1)
    value: tuple[int, ...] = Field(min_length=1)


class SettingsResult(ScriptResult):
    computer_name: str
    applied: list[str] = Field(default_factory=list)
    what_if: bool = False
    audit_policy_csv: str | None = None
    registry: list[ProbeRegistryValue] = Field(default_factory=list)
    security_channel: str | None = None


SET_PROCAUDIT_SETTINGS = ScriptSpec("Set-ProcAuditSettings", "deploy", SettingsParams, SettingsResult, mutating=True)


def read_facts(connector: Connector) -> HostFacts:
    """Run the readiness probe and parse it: the 'read facts' of every operation."""
    return facts_from_probe(connector.run(GET_PROCAUDIT_FACTS, DEPLOY_PROBE), connector.target.name)


def script_item(change: Change) -> tuple[str, int]:
    """The script's ``Item`` and ``Value`` for one change."""
    kind, _, name = change.item.partition(":")
    if kind == "audit":
        if change.after is None:
            raise ValueError(f"{change.item}: an audit subcategory always has a value")
        return f"Subcategory:{name}", change.after
    if kind == "registry":
        if name not in (FORCE_VALUE, CMDLINE_VALUE):
            raise ValueError(f"{change.item}: procaudit writes no other registry value")
        return f"Registry:{name}", DELETE if change.after is None else change.after
    if change.item == LOG_SIZE_ITEM:
        if change.after is None or change.after % 1024:
            raise ValueError(f"{change.item}: the size must be whole kilobytes")
        return "SecurityLogMaxSizeKB", change.after // 1024
    raise ValueError(f"{change.item}: not a setting the direct strategy changes")


def apply_changes(connector: Connector, changes: list[Change] | tuple[Change, ...]) -> SettingsResult:
    pairs = [script_item(c) for c in changes]
    params = SettingsParams(item=tuple(i for i, _ in pairs), value=tuple(v for _, v in pairs))
    return connector.run(SET_PROCAUDIT_SETTINGS, params)


def values_after(result: SettingsResult) -> dict[str, int | None]:
    """Item -> value, from what the script read back after applying. Raises ``ParseError`` on bad raw material."""
    values: dict[str, int | None] = {}
    if result.audit_policy_csv is not None:
        parsed = parse_audit_csv(result.audit_policy_csv, source="auditpol /backup (after the change)")
        for guid, row in parsed.subcategories.items():
            values[f"audit:{guid}"] = row.setting_value
    for entry in result.registry:
        if (entry.key.lower(), entry.name) in ((LSA_KEY.lower(), FORCE_VALUE), (AUDIT_KEY.lower(), CMDLINE_VALUE)):
            value = entry.value
            values[f"registry:{entry.name}"] = (
                int(value) if isinstance(value, int | str) and str(value).isdigit() else None
            )
    if result.security_channel is not None:
        channel = parse_wevtutil_gl(result.security_channel, source="wevtutil gl Security (after the change)")
        values[LOG_SIZE_ITEM] = channel.max_size
    return values


def mismatches(result: SettingsResult, changes: list[Change] | tuple[Change, ...]) -> list[str]:
    """What the host reports differently from what was applied (empty: every change took)."""
    try:
        values = values_after(result)
    except ParseError as exc:
        return [f"the values read back cannot be parsed: {exc}"]
    problems = []
    for change in changes:
        if change.item not in values:
            problems.append(f"{item_label(change.item)}: not read back")
        elif values[change.item] != change.after:
            problems.append(
                f"{item_label(change.item)} is {format_value(change.item, values[change.item])} after the change, "
                f"not {format_value(change.item, change.after)}"
            )
    return problems
