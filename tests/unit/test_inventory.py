from __future__ import annotations

from pathlib import Path

import pytest

from procaudit.errors import InventoryError
from procaudit.inventory import Overrides, load_inventory, to_targets, unsafe_settings

NATIVE = """\
vars:
  transport: https
  auth: negotiate
groups:
  dcs:
    vars: {script_timeout: 300}
    hosts:
      dc01.corp.example: {address: 10.0.0.11}
      dc02.corp.example:
  web:
    hosts:
      web01: {port: 15986, user: CORP\\web-admin}
  servers:
    vars: {auth: kerberos}
    children: [web]
"""

ANSIBLE = """\
all:
  vars:
    ansible_connection: psrp
    ansible_psrp_protocol: http
    ansible_password: "do-not-read-me"
  children:
    windows:
      vars:
        ansible_winrm_transport: [basic, ntlm]
        ansible_psrp_cert_validation: ignore
      hosts:
        win01:
          ansible_host: 192.0.2.10
          ansible_port: 5985
          ansible_user: CORP\\ops
        win02:
      children:
        dcs:
          hosts:
            dc01: {ansible_psrp_auth: kerberos, ansible_psrp_negotiate_hostname_override: dc01.corp.example}
    linux:
      hosts:
        lnx01: {ansible_connection: ssh}
"""


def write(tmp_path: Path, text: str, name: str = "inv.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_native_inventory_merges_vars_by_precedence(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, NATIVE))
    assert inv.format == "procaudit"
    targets = {t.name: t for t in to_targets(inv, inv.select(None), Overrides())}
    assert targets["dc01.corp.example"].address == "10.0.0.11"
    assert targets["dc02.corp.example"].address == "dc02.corp.example"  # no address: dial the name
    assert targets["dc01.corp.example"].options.script_timeout == 300
    # web is a child of servers: the deeper group (web) and the host win over the parent and 'all'
    web = targets["web01"]
    assert web.options.auth == "kerberos" and web.options.port == 15986 and web.username == "CORP\\web-admin"
    assert web.options.scheme == "https" and web.options.cert_validation is True
    assert set(web.var("groups")) == {"servers", "web"}


def test_command_line_overrides_win(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, NATIVE))
    targets = to_targets(inv, inv.select("web01"), Overrides(transport="http", auth="ntlm", no_verify=True))
    assert targets[0].options.scheme == "http" and targets[0].options.auth == "ntlm"
    assert targets[0].options.effective_port == 15986
    assert targets[0].options.cert_validation is False


def test_ansible_inventory_is_understood(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, ANSIBLE))
    assert inv.format == "ansible"
    assert any("ansible_password ignored" in n for n in inv.notices)
    targets = {t.name: t for t in to_targets(inv, inv.select("windows"), Overrides())}
    assert set(targets) == {"win01", "win02", "dc01"}
    win01 = targets["win01"]
    assert (win01.address, win01.options.effective_port, win01.username) == ("192.0.2.10", 5985, "CORP\\ops")
    assert win01.options.scheme == "http" and win01.options.auth == "ntlm"  # basic is skipped, ntlm taken
    assert win01.options.cert_validation is False
    dc01 = targets["dc01"]
    assert dc01.options.auth == "kerberos" and dc01.options.kerberos_hostname == "dc01.corp.example"
    assert all("do-not-read-me" not in repr(t) for t in targets.values())


def test_ansible_non_winrm_host_is_refused_unless_limited_away(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, ANSIBLE))
    with pytest.raises(InventoryError, match=r"inv.yml:\d+: host 'lnx01' uses ansible_connection=ssh"):
        to_targets(inv, inv.select(None), Overrides())
    assert [h.name for h in inv.select("all,!linux")] == ["dc01", "win01", "win02"]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("dcs", ["dc01.corp.example", "dc02.corp.example"]),
        ("servers", ["web01"]),
        ("dc0*", ["dc01.corp.example", "dc02.corp.example"]),
        ("dcs,!dc02*", ["dc01.corp.example"]),
        ("all,&servers", ["web01"]),
        ("web01,dc02.corp.example", ["dc02.corp.example", "web01"]),
    ],
)
def test_limit_patterns(tmp_path: Path, limit: str, expected: list[str]) -> None:
    inv = load_inventory(write(tmp_path, NATIVE))
    assert [h.name for h in inv.select(limit)] == expected


def test_limit_that_matches_nothing_is_an_error(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, NATIVE))
    with pytest.raises(InventoryError, match=r"'sql\*' matches no host or group .*groups: all, dcs, servers, web"):
        inv.select("sql*")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups:\n  dcs:\n    hosts:\n      dc01: {port: 'abc'}\n", r"inv.yml:4: host 'dc01': port must be int"),
        (
            "groups:\n  dcs:\n    hosts:\n      dc01: {transport: ftp}\n",
            r"inv.yml:4: .*transport must be https or http",
        ),
        ("groups:\n  dcs:\n    hosts:\n      dc01: {auth: basic}\n", r"inv.yml:4: .*Basic auth is not supported"),
        ("groups:\n  dcs:\n    hots:\n      dc01:\n", r"inv.yml:3: group 'dcs': unknown key 'hots'"),
        ("groups:\n  dcs:\n    hosts:\n      dc01: {port: 0}\n", r"inv.yml:4: .*port must be between 1 and 65535"),
        # NaN would switch the deadline off; infinity reaches the socket layer as an OverflowError.
        ("hosts:\n  dc01: {script_timeout: .nan}\n", r"inv.yml:2: .*script_timeout must be a positive number"),
        ("hosts:\n  dc01: {connect_timeout: .inf}\n", r"inv.yml:2: .*connect_timeout must be a positive number"),
        ("groups:\n  dcs:\n    hosts: [a, b\n", r"inv.yml:4:\d+: invalid YAML"),
        ("groups:\n  dcs:\n    children: [nope]\n", r"unknown child group 'nope'"),
        ("groups:\n  a:\n    children: [b]\n  b:\n    children: [a]\n", r"group cycle"),
        ("- just\n- a list\n", r"inv.yml:1: an inventory must be a mapping"),
        ("", r"the inventory is empty"),
        ("groups:\n  dcs:\n    hosts:\n      dc01: {address: '{{ lookup }}'}\n", r"inv.yml:4: .*Jinja template"),
        ("groups:\n  dcs: {}\n", r"the inventory lists no hosts"),
        ("vars: {}\nextra: 1\n", r"inv.yml:2: unknown top-level key 'extra'"),
    ],
)
def test_malformed_inventories_name_file_line_and_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        inv = load_inventory(write(tmp_path, text))
        to_targets(inv, inv.select(None), Overrides())


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="no such inventory file"):
        load_inventory(tmp_path / "absent.yml")
    path = tmp_path / "bin.yml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InventoryError, match="cannot read inventory"):
        load_inventory(path)


# The top group sorts last, so its children are met before it: neither file order nor names may decide.
NESTED = """\
vars: {script_timeout: 10}
groups:
  leaf:
    vars: {script_timeout: 30, kerberos_service: LEAF}
    hosts:
      h1:
      h2: {script_timeout: 40}
  mid:
    vars: {script_timeout: 20, kerberos_service: MID, connect_timeout: 2}
    children: [leaf]
  zz-top:
    vars: {connect_timeout: 1, kerberos_service: TOP}
    children: [mid]
"""


def test_deeper_groups_win_over_their_parents_whatever_the_order(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, NESTED))
    targets = {t.name: t for t in to_targets(inv, inv.select(None), Overrides())}
    h1, h2 = targets["h1"].options, targets["h2"].options
    assert (h1.script_timeout, h1.kerberos_service, h1.connect_timeout) == (30, "LEAF", 2)
    assert h2.script_timeout == 40  # host vars win over every group


@pytest.mark.parametrize(("limit", "expected"), [("!dcs", ["web01"]), ("&dcs,!dc01*", ["dc02.corp.example"])])
def test_a_limit_of_only_filters_starts_from_every_host(tmp_path: Path, limit: str, expected: list[str]) -> None:
    inv = load_inventory(write(tmp_path, NATIVE))
    assert [h.name for h in inv.select(limit)] == expected


def test_ansible_port_5985_without_a_scheme_is_http(tmp_path: Path) -> None:
    text = (
        "all:\n  hosts:\n    a: {ansible_port: 5985}\n    b: {ansible_port: 5986}\n    c:\n"
        "    d: {ansible_psrp_port: 5985}\n    e: {ansible_winrm_port: 5985}\n"
    )
    inv = load_inventory(write(tmp_path, text))
    schemes = {
        t.name: (t.options.scheme, t.options.effective_port) for t in to_targets(inv, inv.select(None), Overrides())
    }
    assert schemes == {
        "a": ("http", 5985),
        "b": ("https", 5986),
        "c": ("https", 5986),
        "d": ("http", 5985),  # the plugins' own names for ansible_port
        "e": ("http", 5985),
    }
    native = load_inventory(write(tmp_path, "hosts: {a: {port: 5985}}\n", "native.yml"))
    assert to_targets(native, native.select(None), Overrides())[0].options.scheme == "https"  # ours: say transport


def test_unsafe_inventory_settings_are_warned_about(tmp_path: Path) -> None:
    text = "groups:\n  g:\n    hosts:\n      a: {cert_validation: false}\n      b: {auth: credssp}\n      c:\n"
    inv = load_inventory(write(tmp_path, text))
    warnings = unsafe_settings(to_targets(inv, inv.select(None), Overrides()), Overrides())
    assert len(warnings) == 2
    assert "certificate validation off for 1 host(s) (a)" in warnings[0]
    assert "CredSSP is selected for 1 host(s) (b)" in warnings[1]
    # Whoever passed --no-verify was warned already; a clean selection has nothing to say.
    targets = to_targets(inv, inv.select("a"), Overrides(no_verify=True))
    assert unsafe_settings(targets, Overrides(no_verify=True)) == []
    assert unsafe_settings(to_targets(inv, inv.select("c"), Overrides()), Overrides()) == []


def test_relative_certificate_files_are_found_next_to_the_inventory(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    text = "vars: {ca_bundle: pki/ca.pem, certificate_pem: pki/me.pem, certificate_key_pem: /abs/me.key}\nhosts: [a]\n"
    inv = load_inventory(write(folder, text))
    options = to_targets(inv, inv.select(None), Overrides())[0].options
    assert options.ca_bundle == folder.resolve() / "pki" / "ca.pem"
    assert options.certificate_pem == folder.resolve() / "pki" / "me.pem"
    assert options.certificate_key_pem == Path("/abs/me.key")
