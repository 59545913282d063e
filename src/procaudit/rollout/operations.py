"""Operations: what deploying would change on one host, as a pure function of its facts and the desired state.

``direct_changes(facts, desired)`` returns a ``HostDiff``: the ordered list of ``Change(item, before, after,
reason)`` the direct strategy applies, the items it refuses (and why), and notes. No I/O: the executor reads
the facts, journals every ``before``, applies the changes in this order and re-reads to verify.

Order (each step depends on the one before):

1. Legacy carry-over. When a legacy category policy (``[Event Audit]``, e.g. ``AuditProcessTracking = 3``) is
   configured and ``SCENoApplyLegacyAuditPolicy`` is not 1, each subcategory of that category is set
   explicitly to the legacy value first, so forcing subcategory settings loses no auditing the legacy policy
   gave. Categories set to 0 (no auditing) carry nothing.
2. ``SCENoApplyLegacyAuditPolicy`` = 1 ("Audit: Force audit policy subcategory settings").
3. Process Creation ``|=`` Success: the failure half stays as it was.
4. ``ProcessCreationIncludeCmdLine_Enabled`` = 1.
5. The Security log maximum size, only when the plan asks, and only ever raised.

A setting a domain GPO delivers with another value is refused (a local change would be undone at the next
policy refresh), naming the GPO, unless ``force_local``. A setting whose source could not be read (the
RSoP failed) is refused too: "could not tell" is not "no GPO".

Item keys (stable; journals store them): ``audit:{GUID}``, ``registry:SCENoApplyLegacyAuditPolicy``,
``registry:ProcessCreationIncludeCmdLine_Enabled``, ``security_log:max_size`` (bytes) and, for the GPO
strategy, ``group:<name>`` (1 = the computer is a member).
"""

from __future__ import annotations

import math
from typing import Final

from pydantic import BaseModel, ConfigDict

from procaudit.facts import CMDLINE_VALUE, FORCE_VALUE, HostFacts, SourcedSetting, force_in_effect
from procaudit.parsers.auditpol import (
    LEGACY_CATEGORIES,
    PROCESS_CREATION_GUID,
    SUBCATEGORIES,
    legacy_category_subcategories,
)
from procaudit.parsers.osinfo import CmdlineSupport
from procaudit.units import format_bytes

FORCE_ITEM: Final = f"registry:{FORCE_VALUE}"
CMDLINE_ITEM: Final = f"registry:{CMDLINE_VALUE}"
LOG_SIZE_ITEM: Final = "security_log:max_size"
PROCESS_CREATION_ITEM: Final = f"audit:{PROCESS_CREATION_GUID}"

# wevtutil and the Event Log service keep the maximum size in 64 KiB steps; a requested size is rounded up.
LOG_SIZE_STEP: Final = 64 * 1024
MIN_LOG_SIZE: Final = 1024 * 1024

CANNOT_LOG_CMDLINE: Final = "command lines will not appear on this host"
_SETTING_NAMES: Final = {0: "No Auditing", 1: "Success", 2: "Failure", 3: "Success and Failure"}


def audit_item(guid: str) -> str:
    return f"audit:{guid.upper()}"


def group_item(group: str) -> str:
    return f"group:{group}"


def item_label(item: str) -> str:
    """A person's name for an item key."""
    kind, _, name = item.partition(":")
    if kind == "audit":
        sub = SUBCATEGORIES.get(name)
        return f"Audit {sub.name}" if sub else f"Audit subcategory {name}"
    if item == FORCE_ITEM:
        return "Force audit subcategory settings (SCENoApplyLegacyAuditPolicy)"
    if item == CMDLINE_ITEM:
        return "Include command line in 4688 (ProcessCreationIncludeCmdLine_Enabled)"
    if item == LOG_SIZE_ITEM:
        return "Security log maximum size"
    if kind == "group":
        return f"Member of AD group {name}"
    return item


def format_value(item: str, value: int | None) -> str:
    """A value as people read it: ``Success (1)``, ``absent``, ``512 MiB``, ``member``."""
    if value is None:
        return "absent" if item.startswith("registry:") else "unknown"
    if item.startswith("audit:"):
        return f"{_SETTING_NAMES.get(value, '?')} ({value})"
    if item == LOG_SIZE_ITEM:
        return format_bytes(value)
    if item.startswith("group:"):
        return "member" if value else "not a member"
    return str(value)


class Change(BaseModel):
    """One setting to change on one host: the value read before and the value wanted after."""

    model_config = ConfigDict(frozen=True)

    item: str
    before: int | None
    """``None``: the registry value does not exist."""
    after: int | None
    """``None``: delete the registry value (only a rollback does that)."""
    reason: str

    @property
    def label(self) -> str:
        return item_label(self.item)

    def describe(self) -> str:
        return f"{self.label}: {format_value(self.item, self.before)} -> {format_value(self.item, self.after)}"


class Refusal(BaseModel):
    """A change the host needs but that procaudit will not make here, and why."""

    model_config = ConfigDict(frozen=True)

    item: str
    current: int | None
    wanted: int | None
    reason: str
    gpo: str | None = None
    """The GPO that owns the setting, when that is the reason."""

    @property
    def label(self) -> str:
        return item_label(self.item)


class HostDiff(BaseModel):
    """What deploying means for one host."""

    model_config = ConfigDict(frozen=True)

    host: str
    changes: tuple[Change, ...] = ()
    refused: tuple[Refusal, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def noop(self) -> bool:
        return not self.changes


class DesiredState(BaseModel):
    """What the rollout wants on a host. ``log_max_size`` in bytes, ``None`` leaves the log size alone."""

    model_config = ConfigDict(frozen=True)

    log_max_size: int | None = None


def round_log_size(size: int) -> int:
    """Round a requested Security log size up to the 64 KiB step Windows keeps (at least 1 MiB)."""
    return max(MIN_LOG_SIZE, math.ceil(size / LOG_SIZE_STEP) * LOG_SIZE_STEP)


def is_domain_gpo(source: SourcedSetting | None) -> bool:
    return source is not None and source.gpo_id is not None and source.gpo_id != "LocalGPO"


def _gpo_label(source: SourcedSetting) -> str:
    return f"domain GPO {source.label}"


class _Builder:
    def __init__(self, facts: HostFacts, force_local: bool) -> None:
        self.facts = facts
        self.force_local = force_local
        self.changes: list[Change] = []
        self.refused: list[Refusal] = []
        self.notes: list[str] = []

    def owner_conflict(
        self, item: str, source: SourcedSetting | None, current: int | None, wanted: int, ok: bool
    ) -> bool:
        """Refuse (return True) when a domain GPO delivers a conflicting value (``ok`` False), unless forced."""
        if not is_domain_gpo(source) or ok:
            return False
        assert source is not None
        value = "another value" if source.value is None else format_value(item, source.value)
        if self.force_local:
            self.notes.append(
                f"{item_label(item)}: {_gpo_label(source)} sets {value}; changed locally anyway (--force-local): "
                "the next policy refresh will undo it unless that GPO changes"
            )
            return False
        self.refused.append(
            Refusal(
                item=item,
                current=current,
                wanted=wanted,
                gpo=source.gpo_name or source.gpo_id,
                reason=f"{_gpo_label(source)} sets {value}; a local change would be undone at the next policy "
                "refresh. Change that GPO, deploy with --strategy gpo, or pass --force-local",
            )
        )
        return True

    def unknown_source(self, item: str, current: int | None, wanted: int) -> bool:
        """Refuse when the RSoP could not be read: no one can say whether a GPO owns the setting."""
        if self.facts.policy is not None or self.force_local:
            return False
        why = self.facts.problems.get("policy", "gpresult returned nothing")
        self.refused.append(
            Refusal(
                item=item,
                current=current,
                wanted=wanted,
                reason=f"could not tell whether a domain GPO sets it (the RSoP could not be read: {why}); "
                "pass --force-local to change it anyway",
            )
        )
        return True


def direct_changes(facts: HostFacts, desired: DesiredState, *, force_local: bool = False) -> HostDiff:
    """The changes the direct strategy makes on this host, in the order they must be applied."""
    b = _Builder(facts, force_local)
    policy = facts.policy
    audit = facts.audit
    force = facts.registry.force_subcategory

    # 2 first, because 1 and 3 depend on whether the force flag can be set at all.
    force_needed = force != 1
    force_refused = False
    if force_needed:
        source = policy.force_subcategory if policy else None
        force_refused = b.unknown_source(FORCE_ITEM, force, 1) or b.owner_conflict(
            FORCE_ITEM, source, force, 1, ok=source is not None and source.value == 1
        )

    pc_base: int | None = audit.process_creation if audit else None
    carried: list[Change] = []
    if audit is None:
        why = facts.problems.get("audit", "auditpol /backup returned nothing")
        b.refused.append(
            Refusal(
                item=PROCESS_CREATION_ITEM,
                current=None,
                wanted=None,
                reason=f"the audit policy could not be read ({why})",
            )
        )
    elif force_needed and not force_refused and not force_in_effect(facts):
        # The legacy categories apply now (the flag is 0): carry them over so forcing loses no auditing. Where the
        # flag is absent its default (Enabled) is in effect already and the subcategories hold their own values.
        legacy = facts.legacy
        if legacy is None:
            why = facts.problems.get("legacy", "secedit returned nothing")
            b.refused.append(
                Refusal(
                    item=FORCE_ITEM,
                    current=force,
                    wanted=1,
                    reason=f"the legacy category policy could not be read ({why}), so forcing subcategory "
                    "settings might drop auditing it gives",
                )
            )
            force_refused = True
        else:
            for category, value in sorted(legacy.categories.items(), key=lambda kv: _category_order(kv[0])):
                if value == 0:
                    continue
                for guid in legacy_category_subcategories(category):
                    if guid == PROCESS_CREATION_GUID:
                        pc_base = value  # Process Creation is handled in step 3, from the legacy value
                        continue
                    current = audit.settings.get(guid, 0)
                    if current != value:
                        carried.append(
                            Change(
                                item=audit_item(guid),
                                before=current,
                                after=value,
                                reason=f"carry legacy {category} = {value} over to its subcategory before forcing "
                                "subcategory settings",
                            )
                        )
    b.changes.extend(carried)
    if force_needed and not force_refused:
        b.changes.append(
            Change(
                item=FORCE_ITEM,
                before=force,
                after=1,
                reason="subcategory settings must win over legacy category policy (MS-GPAC 5.1)",
            )
        )

    # 3. Process Creation |= Success.
    if audit is not None:
        pc_current = audit.process_creation
        base = pc_base or 0
        pc_wanted = base | 1
        if pc_current != pc_wanted:
            source = policy.process_creation if policy else None
            if force_refused and not force_in_effect(facts):
                b.refused.append(
                    Refusal(
                        item=PROCESS_CREATION_ITEM,
                        current=pc_current,
                        wanted=pc_wanted,
                        reason="SCENoApplyLegacyAuditPolicy cannot be set, so a legacy category policy would "
                        "overwrite Process Creation at the next refresh",
                    )
                )
            elif not b.unknown_source(PROCESS_CREATION_ITEM, pc_current, pc_wanted) and not b.owner_conflict(
                PROCESS_CREATION_ITEM,
                source,
                pc_current,
                pc_wanted,
                ok=source is not None and bool((source.value or 0) & 1),
            ):
                why = "audit successful process creation (event 4688)"
                if base & 2:
                    why += "; failure auditing stays on"
                if base != (pc_current or 0):
                    why += f" (from the carried-over legacy value {base})"
                b.changes.append(Change(item=PROCESS_CREATION_ITEM, before=pc_current, after=pc_wanted, reason=why))

    # 4. Command line in 4688.
    cmdline = facts.registry.cmdline_enabled
    if cmdline != 1:
        source = policy.cmdline if policy else None
        if not b.unknown_source(CMDLINE_ITEM, cmdline, 1) and not b.owner_conflict(
            CMDLINE_ITEM, source, cmdline, 1, ok=source is not None and source.value == 1
        ):
            b.changes.append(
                Change(item=CMDLINE_ITEM, before=cmdline, after=1, reason="4688 carries the process command line")
            )
    b.notes.extend(os_notes(facts))

    # 5. The Security log size: raise only, only when asked.
    if desired.log_max_size is not None:
        _log_size(b, round_log_size(desired.log_max_size))
    return HostDiff(host=facts.host, changes=tuple(b.changes), refused=tuple(b.refused), notes=tuple(b.notes))


def os_notes(facts: HostFacts) -> list[str]:
    """What the OS will not do whatever is configured (``verify`` expects it)."""
    if facts.os is not None and facts.os.cmdline_support != CmdlineSupport.SUPPORTED:
        return [f"{CANNOT_LOG_CMDLINE}: {facts.os.cmdline_reason}"]
    return []


def _log_size(b: _Builder, wanted: int) -> None:
    facts = b.facts
    current = facts.security_log.max_size if facts.security_log else None
    if current is None:
        why = facts.problems.get("security_log", "wevtutil returned nothing")
        b.refused.append(
            Refusal(item=LOG_SIZE_ITEM, current=None, wanted=wanted, reason=f"the log size could not be read ({why})")
        )
        return
    if current >= wanted:
        b.notes.append(
            f"Security log maximum size is {format_bytes(current)}, at least the {format_bytes(wanted)} asked for: "
            "left alone (procaudit never shrinks a log)"
        )
        return
    source = facts.policy.security_log_max_size_kb if facts.policy else None
    policy_kb = facts.registry.eventlog_policy_max_size_kb
    if source is not None or policy_kb is not None:
        owner = _gpo_label(source) if is_domain_gpo(source) and source else "a policy"
        kb = source.value if source is not None and source.value is not None else policy_kb
        b.refused.append(
            Refusal(
                item=LOG_SIZE_ITEM,
                current=current,
                wanted=wanted,
                gpo=(source.gpo_name or source.gpo_id) if source is not None else None,
                reason=f"{owner} sets the maximum size ({kb} KB); the Event Log service uses the policy value, so "
                "a local change has no effect (--force-local does not help): change the policy",
            )
        )
        return
    b.changes.append(
        Change(
            item=LOG_SIZE_ITEM,
            before=current,
            after=wanted,
            reason=f"the plan asks for {format_bytes(wanted)} to keep enough days of events",
        )
    )


def _category_order(category: str) -> int:
    names = [name.lower() for name in LEGACY_CATEGORIES]
    return names.index(category.lower()) if category.lower() in names else len(names)


def current_value(facts: HostFacts, item: str) -> int | None:
    """The value of ``item`` in ``facts`` (``None``: absent, or not readable)."""
    kind, _, name = item.partition(":")
    if kind == "audit":
        return facts.audit.settings.get(name.upper(), 0) if facts.audit else None
    if kind == "registry":
        key = facts.registry
        return key.force_subcategory if name == FORCE_VALUE else key.cmdline_enabled if name == CMDLINE_VALUE else None
    if item == LOG_SIZE_ITEM:
        return facts.security_log.max_size if facts.security_log else None
    return None


def readable(facts: HostFacts, item: str) -> bool:
    """Whether ``facts`` could tell the value of ``item`` (registry values are always read; absent is a value)."""
    kind = item.partition(":")[0]
    if kind == "audit":
        return facts.audit is not None
    if item == LOG_SIZE_ITEM:
        return facts.security_log is not None and facts.security_log.max_size is not None
    return kind == "registry"
