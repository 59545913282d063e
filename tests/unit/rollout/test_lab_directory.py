"""The lab's AD / Group Policy model and the DC scripts' lab implementations: real error shapes, security
filtering with Kerberos ticket latency, link precedence, and what stays behind when a GPO stops applying."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from procaudit.gpo.settings import GpoSettings
from procaudit.lab.directory import AUTHENTICATED_USERS, DEFAULT_GPOS, CmdletError, directory_of, ou_dn
from procaudit.lab.model import AUDIT_KEY, CMDLINE_VALUE, EVENTLOG_POLICY_KEY, PROCESS_CREATION, LabWorld
from procaudit.lab.profiles import build_host
from procaudit.rollout.deploy import GpoOptions
from procaudit.rollout.gpo import (
    GET_GPO_STATE,
    IMPORT_GPO,
    INVOKE_POLICY_REFRESH,
    SET_GPO_FILTER,
    SET_GPO_LINK,
    SET_GROUP_MEMBER,
    FilterParams,
    GpoStateParams,
    LinkParams,
    MemberParams,
    RefreshParams,
    render,
)
from procaudit.transport.base import ConnectionOptions, HostTarget
from tests.unit.rollout.labhost import ScriptFailed, facts, run

NAME = "procaudit - Process Creation Auditing"
SERVERS = ou_dn("Servers")

DEFAULT_GPO_IDS = {gpo_id for gpo_id, _name, _ou in DEFAULT_GPOS}


def world_of(*profiles: str) -> LabWorld:
    world = LabWorld()
    for profile in profiles:
        host = build_host(profile, f"lab-{profile}-01")
        world.hosts[host.name] = host
    return world


def options(log_size_kb: int | None = None) -> GpoOptions:
    dc = HostTarget(name="lab-dc-01", address="127.0.0.1", options=ConnectionOptions())
    return GpoOptions(dc=dc, ous=(SERVERS,), name=NAME, log_size_kb=log_size_kb)


def imported(world: LabWorld, log_size_kb: int | None = None) -> None:
    dc = world.hosts["lab-dc-01"]
    rendered = render(options(log_size_kb), "corp.example")
    result = run(dc, IMPORT_GPO, rendered.import_params(NAME), world)
    assert result.imported and not result.existed
    run(dc, SET_GPO_FILTER, FilterParams(gpo_name=NAME, group_name="pilot"), world)
    run(dc, SET_GPO_LINK, LinkParams(gpo_name=NAME, target=(SERVERS,)), world)


def capture_line(windows_capture: Callable[[str], Path], name: str, marker: str) -> str:
    text = windows_capture(f"08_grouppolicy_module/{name}").read_text(encoding="utf-8")
    return next(line for line in text.splitlines() if marker in line)


def test_dc_scripts_fail_like_windows_where_the_modules_are_missing(windows_capture: Callable[[str], Path]) -> None:
    world = world_of("dc", "ready")
    with pytest.raises(ScriptFailed) as info:
        run(world.hosts["lab-ready-01"], GET_GPO_STATE, GpoStateParams(gpo_name=NAME), world)
    real = capture_line(
        windows_capture, "error_get-gpo_not_recognized_no_gpmc_pswindocumentation_issue1.txt", "not recognized"
    )
    shape = re.escape(real.split(" : ", 1)[1]).replace("Get\\-GPO", "[A-Za-z-]+")
    assert re.fullmatch(shape, str(info.value))


def test_import_gpo_rejects_data_it_cannot_read_with_the_real_hresult(windows_capture: Callable[[str], Path]) -> None:
    world = world_of("dc")
    dc = world.hosts["lab-dc-01"]
    params = render(options(), "corp.example").import_params(NAME)
    paths = list(params.relative_path)
    contents = list(params.content_base64)
    digests = list(params.sha256)
    index = next(i for i, p in enumerate(paths) if p.endswith("audit.csv"))
    garbage = b"Machine Name,Policy Target\r\nnot,a,row\r\n"
    contents[index] = base64.b64encode(garbage).decode()
    digests[index] = hashlib.sha256(garbage).hexdigest()
    broken = params.model_copy(update={"content_base64": tuple(contents), "sha256": tuple(digests)})
    with pytest.raises(ScriptFailed) as info:
        run(dc, IMPORT_GPO, broken, world)
    real = capture_line(windows_capture, "error_import-gpo_data_invalid_en_hardenad_log.txt", "0x8007000D")
    assert str(info.value) == real.split("Error: ", 1)[1]
    assert set(directory_of(world).gpos) == DEFAULT_GPO_IDS  # only the domain's own two
    tampered = params.model_copy(update={"sha256": tuple("0" * 64 for _ in digests)})
    with pytest.raises(ScriptFailed, match=r"arrived with SHA-256 .* nothing was imported"):
        run(dc, IMPORT_GPO, tampered, world)
    assert set(directory_of(world).gpos) == DEFAULT_GPO_IDS  # only the domain's own two


def test_new_gplink_on_a_linked_target_fails_as_windows_does(windows_capture: Callable[[str], Path]) -> None:
    world = world_of("dc", "ready")
    imported(world)
    directory = directory_of(world)
    with pytest.raises(CmdletError) as info:
        directory.new_link(directory.require_gpo(NAME), SERVERS)
    real = capture_line(
        windows_capture,
        "error_new-gplink_already_linked_and_new-gpo_exists_servicedesk_TRUNCATED.txt",
        "already linked",
    )
    shape = re.sub(r"'[^']*'", "'[^']*'", re.escape(real.split(" : ", 1)[1]).replace("\\'", "'"))
    assert re.fullmatch(shape, str(info.value))
    # The link script checks first: linking again is a no-op, not an error.
    again = run(world.hosts["lab-dc-01"], SET_GPO_LINK, LinkParams(gpo_name=NAME, target=(SERVERS,)), world)
    assert [(r.before, r.after) for r in again.links] == [("enabled", "enabled")]


def test_filtering_applies_only_to_members_and_only_after_a_ticket_purge() -> None:
    world = world_of("dc", "fresh-2019", "cmdline-off")
    imported(world)
    dc, member, other = (world.hosts[n] for n in ("lab-dc-01", "lab-fresh-2019-01", "lab-cmdline-off-01"))
    gpo = directory_of(world).require_gpo(NAME)
    assert gpo.permission_of(AUTHENTICATED_USERS) == "GpoRead" and gpo.permission_of("pilot") == "GpoApply"
    run(dc, SET_GROUP_MEMBER, MemberParams(group_name="pilot", member=("LAB-FRESH-2019-$",)), world)
    directory_of(world).refresh(member)  # a background refresh: the old ticket has no 'pilot' yet
    assert member.policy.lsa[PROCESS_CREATION] == 0
    run(member, INVOKE_POLICY_REFRESH, RefreshParams(), world)  # klist purge, then gpupdate
    assert member.policy.lsa[PROCESS_CREATION] == 1 and member.cmdline_enabled() == 1
    run(other, INVOKE_POLICY_REFRESH, RefreshParams(), world)
    assert other.policy.lsa[PROCESS_CREATION] == 1 and other.cmdline_enabled() == 0  # not a member: untouched
    source = facts(member).policy
    assert source is not None and source.process_creation is not None and source.process_creation.gpo_name == NAME


def test_when_the_gpo_stops_applying_registry_policy_goes_and_audit_policy_stays() -> None:
    world = world_of("dc", "cmdline-off")
    imported(world, log_size_kb=262144)
    dc, host = world.hosts["lab-dc-01"], world.hosts["lab-cmdline-off-01"]
    local_size = host.security_log.max_size
    host.policy.lsa[PROCESS_CREATION] = 0
    run(dc, SET_GROUP_MEMBER, MemberParams(group_name="pilot", member=("LAB-CMDLINE-OFF$",)), world)
    run(host, INVOKE_POLICY_REFRESH, RefreshParams(), world)
    assert host.security_log.max_size == 262144 * 1024 and host.registry[EVENTLOG_POLICY_KEY]["MaxSize"] == 262144
    run(dc, SET_GROUP_MEMBER, MemberParams(group_name="pilot", member=("LAB-CMDLINE-OFF$",), remove=True), world)
    run(host, INVOKE_POLICY_REFRESH, RefreshParams(), world)
    assert host.policy.lsa[PROCESS_CREATION] == 1, "advanced audit policy is tattooed in LSA"
    assert CMDLINE_VALUE not in host.registry[AUDIT_KEY], "the registry extension removed its policy value"
    assert "MaxSize" not in host.registry[EVENTLOG_POLICY_KEY]
    assert host.security_log.max_size == local_size


def test_an_ou_link_wins_over_the_domain_baseline_and_a_domain_link_does_not() -> None:
    world = world_of("dc", "gpo-managed")
    imported(world)
    dc, host = world.hosts["lab-dc-01"], world.hosts["lab-gpo-managed-01"]
    run(dc, SET_GROUP_MEMBER, MemberParams(group_name="pilot", member=("LAB-GPO-MANAGED$",)), world)
    run(host, INVOKE_POLICY_REFRESH, RefreshParams(), world)
    assert host.policy.lsa[PROCESS_CREATION] == 1 and host.cmdline_enabled() == 1
    run(dc, SET_GPO_LINK, LinkParams(gpo_name=NAME, target=(SERVERS,), remove=True), world)
    run(dc, SET_GPO_LINK, LinkParams(gpo_name=NAME, target=("DC=corp,DC=example",)), world)
    run(host, INVOKE_POLICY_REFRESH, RefreshParams(), world)
    assert host.cmdline_enabled() == 0, "linked at the domain, after the baseline: the baseline wins"


def test_gpo_settings_parsed_from_the_backup_are_what_the_gpo_applies() -> None:
    world = world_of("dc")
    imported(world, log_size_kb=1048576)
    gpo = directory_of(world).require_gpo(NAME)
    assert gpo.payload.audit == {PROCESS_CREATION: 1}
    assert {n: v for (_k, n), v in gpo.payload.registry.items()} == {
        "ProcessCreationIncludeCmdLine_Enabled": 1,
        "MaxSize": 1048576,
    }
    assert list(gpo.payload.security_registry.values()) == [1] and not gpo.payload.legacy
    assert GpoSettings(display_name=NAME, security_log_max_kb=1048576).security_log_max_kb == 1048576
