"""What the lab models about deploy, checked on real Windows. Opt-in, like every live test.

By default nothing is changed: the mutating scripts run with -WhatIf (they must change nothing and still return
raw material our parsers read). ``PROCAUDIT_LIVE_DEPLOY=1`` (a disposable host only) applies the direct
strategy's changes for real and rolls them back, checking that the host's settings come back exactly.
``PROCAUDIT_LIVE_DC=<name or address>`` (with the same credentials) reads a domain controller's GPO state.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
from pydantic import Field

from procaudit.credentials import resolve_credentials
from procaudit.errors import RemoteScriptError
from procaudit.remote import ScriptResult, ScriptSpec
from procaudit.rollout.deploy import GpoOptions
from procaudit.rollout.direct import (
    SET_PROCAUDIT_SETTINGS,
    SettingsParams,
    SettingsResult,
    apply_changes,
    mismatches,
    read_facts,
    values_after,
)
from procaudit.rollout.gpo import (
    GET_GPO_STATE,
    IMPORT_GPO,
    INVOKE_POLICY_REFRESH,
    SET_GPO_FILTER,
    SET_GPO_LINK,
    SET_GROUP_MEMBER,
    FilterParams,
    GpoStateParams,
    ImportParams,
    LinkParams,
    MemberParams,
    RefreshParams,
    RefreshResult,
    render,
)
from procaudit.rollout.journal import HostEntry
from procaudit.rollout.operations import PROCESS_CREATION_ITEM, Change, DesiredState, current_value, direct_changes
from procaudit.rollout.operations import readable as is_readable
from procaudit.rollout.rollback import restore_changes
from procaudit.transport.base import HostTarget
from procaudit.transport.psrp import PsrpConnector

pytestmark = pytest.mark.live


class WhatIfSettings(SettingsParams):
    what_if: bool = Field(default=True, alias="WhatIf")


class WhatIfRefresh(RefreshParams):
    what_if: bool = Field(default=True, alias="WhatIf")


def test_set_settings_whatif_changes_nothing_and_returns_parseable_state(live: PsrpConnector) -> None:
    facts = read_facts(live)
    assert facts.audit is not None and facts.audit.process_creation is not None
    diff = direct_changes(facts, DesiredState(), force_local=True)
    changes = diff.changes or (
        Change(
            item=PROCESS_CREATION_ITEM,
            before=facts.audit.process_creation,
            after=facts.audit.process_creation,
            reason="probe",
        ),
    )
    from procaudit.rollout.direct import script_item

    pairs = [script_item(c) for c in changes]
    spec = ScriptSpec(SET_PROCAUDIT_SETTINGS.name, "deploy", WhatIfSettings, SettingsResult, mutating=True)
    result = live.run(spec, WhatIfSettings(item=tuple(i for i, _ in pairs), value=tuple(v for _, v in pairs)))
    assert result.what_if and result.applied == []
    values = values_after(result)
    assert values[PROCESS_CREATION_ITEM] == facts.audit.process_creation
    assert read_facts(live).audit == facts.audit


def test_policy_refresh_whatif_runs_nothing(live: PsrpConnector) -> None:
    spec = ScriptSpec(INVOKE_POLICY_REFRESH.name, "deploy", WhatIfRefresh, RefreshResult, mutating=True)
    result = live.run(spec, WhatIfRefresh())
    assert result.what_if and result.gpupdate_exit_code is None and result.computer_name


@pytest.mark.skipif(
    os.environ.get("PROCAUDIT_LIVE_DEPLOY") != "1", reason="set PROCAUDIT_LIVE_DEPLOY=1 on a disposable host"
)
def test_apply_then_roll_back_restores_the_host_exactly(live: PsrpConnector) -> None:
    before = read_facts(live)
    diff = direct_changes(before, DesiredState(), force_local=True)
    if not diff.changes:
        pytest.skip("the host needs no change")
    assert not mismatches(apply_changes(live, diff.changes), diff.changes)
    entry = HostEntry(host="live", wave=1)
    entry.record_before({c.item: c.before for c in diff.changes})
    entry.intended.update({c.item: c.after for c in diff.changes})
    now = read_facts(live)
    restore, skipped = restore_changes(entry, lambda i: (is_readable(now, i), current_value(now, i)), "direct")
    assert not skipped
    assert not mismatches(apply_changes(live, restore), restore)
    after = read_facts(live)
    for item in entry.before:
        assert current_value(after, item) == current_value(before, item), item


@pytest.mark.skipif(not os.environ.get("PROCAUDIT_LIVE_DC"), reason="set PROCAUDIT_LIVE_DC to a domain controller")
def test_gpo_state_reads_a_real_domain(live_target: HostTarget) -> None:
    dc = dataclasses.replace(live_target, name=os.environ["PROCAUDIT_LIVE_DC"], address=os.environ["PROCAUDIT_LIVE_DC"])
    with PsrpConnector(dc, resolve_credentials(None)) as connector:
        state = connector.run(GET_GPO_STATE, GpoStateParams(gpo_name="Default Domain Policy", target=("DC=invalid",)))
    assert state.domain.dns_root and state.domain.distinguished_name.upper().startswith("DC=")
    assert state.gpo is not None and state.gpo.permissions, "the Default Domain Policy exists and has permissions"
    assert [t.exists for t in state.targets] == [False]
    # Every trustee comes with its SID; Authenticated Users is S-1-5-11 whatever the DC's language names it.
    assert all(p.trustee_sid and p.trustee_sid.startswith("S-1-") for p in state.gpo.permissions)
    assert any(p.trustee_sid == "S-1-5-11" for p in state.gpo.permissions), "Authenticated Users reads the GPO"


class WhatIfImport(ImportParams):
    what_if: bool = Field(default=True, alias="WhatIf")


class WhatIfFilter(FilterParams):
    what_if: bool = Field(default=True, alias="WhatIf")


class WhatIfLink(LinkParams):
    what_if: bool = Field(default=True, alias="WhatIf")


class WhatIfMember(MemberParams):
    what_if: bool = Field(default=True, alias="WhatIf")


@pytest.mark.skipif(not os.environ.get("PROCAUDIT_LIVE_DC"), reason="set PROCAUDIT_LIVE_DC to a domain controller")
def test_gpo_scripts_under_whatif_change_nothing_in_a_real_domain(live_target: HostTarget) -> None:
    """Import, security filtering, linking and membership, each with -WhatIf: the domain reads the same after."""
    dc = dataclasses.replace(live_target, name=os.environ["PROCAUDIT_LIVE_DC"], address=os.environ["PROCAUDIT_LIVE_DC"])
    name = f"procaudit-live-{os.getpid()}"
    group = f"procaudit-live-{os.getpid()}"
    with PsrpConnector(dc, resolve_credentials(None)) as connector:
        domain = connector.run(GET_GPO_STATE, GpoStateParams(gpo_name=name)).domain
        state = GpoStateParams(gpo_name=name, group_name=(group,), target=(domain.distinguished_name,))
        before = connector.run(GET_GPO_STATE, state)
        rendered = render(GpoOptions(dc=dc, ous=(domain.distinguished_name,), name=name), domain.dns_root)
        imported = connector.run(IMPORT_GPO, WhatIfImport(**rendered.import_params(name).model_dump()))
        assert imported.existed is False and imported.imported is False
        # The group does not exist: the filter script says so (a rollback reads it), and -WhatIf creates nothing.
        filtered = connector.run(SET_GPO_FILTER, WhatIfFilter(gpo_name="Default Domain Policy", group_name=group))
        assert filtered.group_found is False and filtered.group_created is False
        # The rollback's restore: only Authenticated Users, no group looked up (this one does not exist).
        restore = WhatIfFilter(gpo_name="Default Domain Policy", everyone_only=True, authenticated_users="GpoApply")
        assert connector.run(SET_GPO_FILTER, restore).group_created is False
        connector.run(SET_GPO_LINK, WhatIfLink(gpo_name="Default Domain Policy", target=(domain.distinguished_name,)))
        # The wave group does not exist yet (the filter step creates it): AD says so, as the lab models.
        with pytest.raises(RemoteScriptError, match="Cannot find an object with identity"):
            connector.run(
                SET_GROUP_MEMBER, WhatIfMember(group_name=group, member=(f"{os.environ['PROCAUDIT_LIVE_DC']}$",))
            )
        # A rollback's -Remove on a group that does not exist (any more) has nothing to do, and says so.
        gone = connector.run(
            SET_GROUP_MEMBER,
            WhatIfMember(group_name=group, member=(f"{os.environ['PROCAUDIT_LIVE_DC']}$",), remove=True),
        )
        assert gone.missing and gone.changed == []
        after = connector.run(GET_GPO_STATE, state)
    assert after == before


class _NativeProbeResult(ScriptResult):
    ok_code: int | None = None
    missing_code: int | None = None
    missing_output: str = ""


@dataclasses.dataclass(frozen=True)
class _ProbeSpec(ScriptSpec[RefreshParams, _NativeProbeResult]):
    body: str = ""

    @property
    def text(self) -> str:  # type: ignore[override]
        return self.body


def test_invoke_native_reports_a_program_that_cannot_start_not_the_previous_exit_code(live: PsrpConnector) -> None:
    # The lab models an unlaunchable program as exit code -1 with "did not run"; check it on Windows with the
    # exact Invoke-Native the shipped scripts carry: a program that ran (0), then one that cannot start.
    shipped = INVOKE_POLICY_REFRESH.text
    start = shipped.index("function Invoke-Native")
    function = shipped[start : shipped.index("\n}\n", start) + 3]
    body = (
        "$ErrorActionPreference = 'Stop'\n$system32 = [Environment]::SystemDirectory\n"
        + function
        + "$ok = Invoke-Native 'whoami.exe' @()\n"
        + "$missing = Invoke-Native 'procaudit-no-such-program.exe' @()\n"
        + "[pscustomobject]@{ OkCode = $ok.ExitCode; MissingCode = $missing.ExitCode; "
        + "MissingOutput = $missing.Output } | ConvertTo-Json -Compress\n"
    )
    spec = _ProbeSpec("Invoke-NativeProbe", "deploy", RefreshParams, _NativeProbeResult, body=body)
    try:
        result = live.run(spec, RefreshParams())
    except RemoteScriptError as exc:
        if "procaudit lab: refused a script" in str(exc):
            pytest.skip("the lab runs only the shipped scripts: it models the outcome in its refresh handler")
        raise
    assert result.ok_code == 0
    assert result.missing_code == -1 and "did not run" in result.missing_output, result
