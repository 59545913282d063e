"""Operations: the diff the direct strategy computes from a host's facts, applied to the lab's host model.

Facts come from the probe's lab implementation and changes go through Set-ProcAuditSettings' lab
implementation (tests/unit/rollout/labhost.py), so what is asserted is what a deployment would do.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procaudit.facts import HostFacts
from procaudit.lab.model import AUDIT_KEY, CMDLINE_VALUE, EVENTLOG_POLICY_KEY, FORCE_VALUE, LSA_KEY, PROCESS_CREATION
from procaudit.lab.profiles import PROFILES
from procaudit.parsers.auditpol import legacy_category_subcategories
from procaudit.rollout.direct import mismatches
from procaudit.rollout.journal import HostEntry
from procaudit.rollout.operations import (
    CMDLINE_ITEM,
    FORCE_ITEM,
    LOG_SIZE_ITEM,
    PROCESS_CREATION_ITEM,
    DesiredState,
    current_value,
    direct_changes,
    readable,
    round_log_size,
)
from procaudit.rollout.rollback import restore_changes
from tests.unit.rollout.labhost import apply, facts, lab_host

MB = 1024 * 1024
LOGON_GUIDS = legacy_category_subcategories("AuditLogonEvents")
TRACKING_GUIDS = legacy_category_subcategories("AuditProcessTracking")


def settings_of(f: HostFacts) -> tuple[object, ...]:
    """What deploy may change on a host; rollback must bring every part back."""
    assert f.audit is not None and f.security_log is not None
    return (dict(f.audit.settings), f.registry.force_subcategory, f.registry.cmdline_enabled, f.security_log.max_size)


def test_fresh_host_gets_force_flag_then_success_then_command_line() -> None:
    diff = direct_changes(facts(lab_host("fresh-2019")), DesiredState())
    assert [(c.item, c.before, c.after) for c in diff.changes] == [
        (FORCE_ITEM, None, 1),
        (PROCESS_CREATION_ITEM, 0, 1),
        (CMDLINE_ITEM, None, 1),
    ]
    assert not diff.refused


def test_failure_auditing_is_kept() -> None:
    host = lab_host("fresh-2019")
    host.policy.lsa[PROCESS_CREATION] = 2
    diff = direct_changes(facts(host), DesiredState())
    change = next(c for c in diff.changes if c.item == PROCESS_CREATION_ITEM)
    assert (change.before, change.after) == (2, 3) and "failure auditing stays on" in change.reason


def test_legacy_categories_are_carried_over_before_the_force_flag() -> None:
    host = lab_host("fresh-2019")
    host.registry[LSA_KEY][FORCE_VALUE] = 0  # disabled (absent would count as its default, Enabled)
    host.policy.legacy = {"AuditProcessTracking": 3, "AuditLogonEvents": 1, "AuditSystemEvents": 0}
    host.refresh_policy()  # the legacy categories are what LSA holds now
    host.policy.lsa[LOGON_GUIDS[0]] = 0  # someone changed one subcategory since: it gets the legacy value back
    diff = direct_changes(facts(host), DesiredState())
    items = [c.item for c in diff.changes]
    force_at = items.index(FORCE_ITEM)
    carried = items[:force_at]
    assert carried == [f"audit:{LOGON_GUIDS[0]}"]  # the others already hold their legacy value
    assert diff.changes[0].after == 1 and "AuditLogonEvents" in diff.changes[0].reason
    assert PROCESS_CREATION_ITEM not in items  # the legacy category already audits success and failure
    assert items[force_at + 1 :] == [CMDLINE_ITEM]


def test_legacy_carry_over_sets_every_subcategory_that_differs_and_loses_no_auditing() -> None:
    host = lab_host("fresh-2019")
    host.registry[LSA_KEY][FORCE_VALUE] = 0  # the legacy categories apply at each refresh
    host.policy.legacy = {"AuditProcessTracking": 2, "AuditLogonEvents": 3}
    for guid in (*LOGON_GUIDS, *TRACKING_GUIDS):
        host.policy.lsa[guid] = 0  # advanced policy applied after the legacy one, say
    before = facts(host)
    diff = direct_changes(before, DesiredState())
    items = [c.item for c in diff.changes]
    assert items.index(PROCESS_CREATION_ITEM) == items.index(FORCE_ITEM) + 1  # carried, forced, then |= success
    assert all(i.startswith("audit:") for i in items[: items.index(FORCE_ITEM)])
    carried = {c.item.partition(":")[2]: c.after for c in diff.changes if c.item.startswith("audit:")}
    assert carried.pop(PROCESS_CREATION) == 3  # legacy failure + success
    assert carried == {guid: 3 for guid in LOGON_GUIDS} | {
        guid: 2 for guid in TRACKING_GUIDS if guid != PROCESS_CREATION
    }
    apply(host, diff.changes)
    host.refresh_policy()  # the force flag is 1 now: the legacy categories no longer apply
    after = facts(host)
    assert after.audit is not None
    assert all(after.audit.settings[g] == 3 for g in LOGON_GUIDS)
    assert after.audit.process_creation == 3


def test_no_carry_over_where_the_force_flag_is_absent_its_default_is_in_effect() -> None:
    host = lab_host("fresh-2019")  # no SCENoApplyLegacyAuditPolicy: Enabled by default (gpo_audit.md 3.2)
    host.policy.legacy = {"AuditProcessTracking": 1, "AuditLogonEvents": 3}
    host.policy.lsa[PROCESS_CREATION] = 2
    host.refresh_policy()  # the legacy categories do not apply
    diff = direct_changes(facts(host), DesiredState())
    assert [c.item for c in diff.changes] == [FORCE_ITEM, PROCESS_CREATION_ITEM, CMDLINE_ITEM]
    change = next(c for c in diff.changes if c.item == PROCESS_CREATION_ITEM)
    assert (change.before, change.after) == (2, 3)  # failure auditing stays: nothing legacy is carried over


def test_no_carry_over_when_subcategories_already_win_or_the_category_audits_nothing() -> None:
    forced = lab_host("ready")
    forced.policy.legacy = {"AuditLogonEvents": 3}
    assert not [c for c in direct_changes(facts(forced), DesiredState()).changes if c.item.startswith("audit:")]
    nothing = lab_host("legacy-override")  # AuditProcessTracking = 0 from a GPO: nothing to carry
    diff = direct_changes(facts(nothing), DesiredState())
    assert [c.item for c in diff.changes] == [FORCE_ITEM, PROCESS_CREATION_ITEM]


def test_a_domain_gpo_owned_setting_is_refused_with_the_gpo_named_unless_forced() -> None:
    host = lab_host("gpo-managed")
    diff = direct_changes(facts(host), DesiredState())
    assert {r.item for r in diff.refused} == {PROCESS_CREATION_ITEM, CMDLINE_ITEM}
    assert all(r.gpo == "CORP Server Baseline" and "--force-local" in r.reason for r in diff.refused)
    assert not diff.changes
    forced = direct_changes(facts(host), DesiredState(), force_local=True)
    assert {c.item for c in forced.changes} == {PROCESS_CREATION_ITEM, CMDLINE_ITEM}
    assert any("undo it" in n for n in forced.notes)
    apply(host, forced.changes)
    host.refresh_policy()  # the GPO comes back at the next refresh, as on Windows
    assert {c.item for c in direct_changes(facts(host), DesiredState(), force_local=True).changes} == {
        PROCESS_CREATION_ITEM,
        CMDLINE_ITEM,
    }


def test_unreadable_policy_sources_refuse_rather_than_guess() -> None:
    f = facts(lab_host("fresh-2019"))
    blind = f.model_copy(update={"policy": None, "problems": {"policy": "gpresult.exe exited with code 1"}})
    diff = direct_changes(blind, DesiredState())
    reasons = {r.item: r.reason for r in diff.refused}
    assert not diff.changes and set(reasons) == {FORCE_ITEM, PROCESS_CREATION_ITEM, CMDLINE_ITEM}
    assert all("could not tell" in reasons[i] and "gpresult" in reasons[i] for i in (FORCE_ITEM, CMDLINE_ITEM))
    # The flag is absent: its default (Enabled) is in effect, so only the unknown source stops Process Creation.
    assert "could not tell" in reasons[PROCESS_CREATION_ITEM]
    assert direct_changes(blind, DesiredState(), force_local=True).changes
    # Where the flag is 0, legacy category policy applies: a flag that cannot be set leaves Process Creation exposed.
    zero = facts(lab_host("legacy-override"))
    assert zero.registry.force_subcategory == 0
    zero_blind = zero.model_copy(update={"policy": None, "problems": {"policy": "gpresult.exe exited with code 1"}})
    zero_reasons = {r.item: r.reason for r in direct_changes(zero_blind, DesiredState()).refused}
    assert "SCENoApplyLegacyAuditPolicy cannot be set" in zero_reasons[PROCESS_CREATION_ITEM]


def test_log_size_only_grows_in_64k_steps_and_never_against_a_policy() -> None:
    host = lab_host("small-log")  # 20 MB
    diff = direct_changes(facts(host), DesiredState(log_max_size=300 * MB + 1))
    (change,) = [c for c in diff.changes if c.item == LOG_SIZE_ITEM]
    assert change.after == round_log_size(300 * MB + 1) == 300 * MB + 64 * 1024
    assert not [c for c in direct_changes(facts(host), DesiredState(log_max_size=10 * MB)).changes]
    host.registry[EVENTLOG_POLICY_KEY] = {"MaxSize": 32768}
    refused = direct_changes(facts(host), DesiredState(log_max_size=300 * MB)).refused
    assert [r.item for r in refused] == [LOG_SIZE_ITEM] and "32768 KB" in refused[0].reason


def test_the_command_line_note_where_the_os_cannot_log_it() -> None:
    diff = direct_changes(facts(lab_host("win7-no-kb")), DesiredState())
    assert not diff.changes and any("KB3004375" in n for n in diff.notes)


def test_every_profile_converges_in_one_apply_and_rolls_back_to_the_original() -> None:
    for profile in PROFILES:
        host = lab_host(profile)
        original = facts(host)
        diff = direct_changes(original, DesiredState(log_max_size=256 * MB))
        if diff.changes:
            assert not mismatches(apply(host, diff.changes), diff.changes), profile
        again = direct_changes(facts(host), DesiredState(log_max_size=256 * MB))
        assert not again.changes, (profile, again.changes)
        assert [r.item for r in again.refused] == [r.item for r in diff.refused], profile
        _roll_back(host, diff.changes)
        assert settings_of(facts(host)) == settings_of(original), profile


def _roll_back(host, changes) -> None:  # type: ignore[no-untyped-def]
    entry = HostEntry(host=host.name, wave=1)
    entry.record_before({c.item: c.before for c in changes})
    entry.intended.update({c.item: c.after for c in changes})
    now = facts(host)
    restore, skipped = restore_changes(entry, lambda i: (readable(now, i), current_value(now, i)), "direct")
    assert not skipped
    if restore:
        apply(host, restore)


host_states = st.fixed_dictionaries(
    {
        "pc": st.integers(0, 3),
        "force": st.sampled_from([None, 0, 1]),
        "cmdline": st.sampled_from([None, 0, 1]),
        "legacy": st.dictionaries(
            st.sampled_from(["AuditProcessTracking", "AuditLogonEvents", "AuditPrivilegeUse"]),
            st.integers(0, 3),
            max_size=3,
        ),
        "log_mb": st.sampled_from([20, 64, 512]),
        "want_mb": st.sampled_from([None, 32, 128, 1024]),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(host_states)
def test_any_host_state_converges_idempotently_and_rolls_back_exactly(state: dict[str, object]) -> None:
    host = lab_host("fresh-2019")
    host.policy.lsa[PROCESS_CREATION] = int(state["pc"])  # type: ignore[call-overload]
    for key, name, value in ((LSA_KEY, FORCE_VALUE, state["force"]), (AUDIT_KEY, CMDLINE_VALUE, state["cmdline"])):
        if value is not None:
            host.registry[key][name] = int(value)  # type: ignore[call-overload]
    host.policy.legacy = dict(state["legacy"])  # type: ignore[call-overload]
    host.refresh_policy()
    host.security_log.max_size = int(state["log_mb"]) * MB  # type: ignore[call-overload]
    want = state["want_mb"]
    desired = DesiredState(log_max_size=int(want) * MB if want is not None else None)  # type: ignore[call-overload]
    original = facts(host)
    diff = direct_changes(original, desired)
    assert not diff.refused
    if diff.changes:
        apply(host, diff.changes)
    host.refresh_policy()  # a policy refresh after the change must not undo it
    after = facts(host)
    assert not direct_changes(after, desired).changes
    assert after.audit is not None and original.audit is not None
    assert after.audit.process_creation_success
    assert (after.audit.process_creation or 0) & 2 == (original.audit.process_creation or 0) & 2 or any(
        v & 2
        for k, v in original.legacy.categories.items()
        if k == "AuditProcessTracking"  # type: ignore[union-attr]
    )
    for guid, value in original.audit.settings.items():  # no auditing lost anywhere
        assert after.audit.settings[guid] & value == value, guid
    _roll_back(host, diff.changes)
    assert settings_of(facts(host)) == settings_of(original)
