"""OS decisions from locale-independent fields, fed from the captures in shared/data/windows/06_os_info."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from procaudit.errors import ParseError
from procaudit.parsers._text import parse_format_list
from procaudit.parsers.osinfo import (
    CmdlineSupport,
    Role,
    os_facts,
    os_facts_from_cim,
    parse_hotfix_table,
    parse_psversiontable,
)

Capture = Callable[[str], Path]
D = "06_os_info/"


def test_hotfix_table_with_kb3004375_makes_windows_7_sp1_ready(windows_capture: Capture) -> None:
    text = windows_capture(D + "get-hotfix_security_updates_KRAKEN_2015_with_KB3004375.txt").read_text()
    ids = parse_hotfix_table(text)
    assert len(ids) == 130
    assert ids[0] == "KB2479943" and ids[-1] == "KB3063858"
    assert "KB3004375" in ids and "KB2765809" in ids  # the latter's row has InstalledBy filled
    # The capture does not state the OS ("Windows 7 / 2008 R2 era"): the version here is our assumption.
    with_kb = os_facts("6.1.7601", product_type=3, hotfix_ids=ids)
    assert with_kb.cmdline_support is CmdlineSupport.SUPPORTED
    assert with_kb.event_4688_version == 1 and with_kb.has_parent_process_name is False
    assert with_kb.role is Role.MEMBER_SERVER
    without = os_facts("6.1.7601", product_type=1, hotfix_ids=[i for i in ids if i != "KB3004375"])
    assert without.cmdline_support is CmdlineSupport.NEEDS_UPDATE and without.event_4688_version == 0
    assert without.role is Role.WORKSTATION


def test_windows_7_without_a_hotfix_list_is_unknown_not_unsupported() -> None:
    facts = os_facts("6.1.7601")
    assert facts.cmdline_support is CmdlineSupport.UNKNOWN and facts.event_4688_version is None
    assert "hotfix list" in facts.cmdline_reason
    rtm = os_facts("6.1", build_number=7600, hotfix_ids=["KB3004375"])
    assert rtm.cmdline_support is CmdlineSupport.UNSUPPORTED and rtm.event_4688_version == 0


@pytest.mark.parametrize(
    ("version", "product_type", "support", "event", "role"),
    [
        ("10.0.17763", 2, CmdlineSupport.SUPPORTED, 2, Role.DOMAIN_CONTROLLER),
        ("10.0.22631", 1, CmdlineSupport.SUPPORTED, 2, Role.WORKSTATION),
        ("6.3.9600", 3, CmdlineSupport.SUPPORTED, 1, Role.MEMBER_SERVER),
        ("6.2.9200", 3, CmdlineSupport.UNKNOWN, None, Role.MEMBER_SERVER),
        ("6.0.6002", 1, CmdlineSupport.UNSUPPORTED, 0, Role.WORKSTATION),
        ("5.2.3790", None, CmdlineSupport.UNSUPPORTED, None, Role.UNKNOWN),
    ],
)
def test_version_table(
    version: str, product_type: int | None, support: CmdlineSupport, event: int | None, role: Role
) -> None:
    facts = os_facts(version, product_type=product_type, hotfix_ids=[])
    assert (facts.cmdline_support, facts.event_4688_version, facts.role) == (support, event, role)


def test_windows_8_with_the_kb_stays_unknown_and_says_why() -> None:
    facts = os_facts("6.2.9200", hotfix_ids=["kb3004375"])
    assert facts.hotfix_ids == ("KB3004375",)
    assert facts.cmdline_support is CmdlineSupport.UNKNOWN
    assert "6.2" in facts.cmdline_reason and "installed" in facts.cmdline_reason


def test_ko_kr_cim_json_with_version_only(windows_capture: Capture) -> None:
    raw = windows_capture(D + "get-ciminstance_win32_os_select_convertto-json_ko-KR.txt").read_bytes()
    obj = json.loads(raw.decode("utf-8"))
    assert obj["OSArchitecture"] == "64비트"  # localized: never read
    facts = os_facts_from_cim(obj)
    assert (facts.major, facts.minor, facts.build) == (10, 0, None)
    assert facts.cmdline_support is CmdlineSupport.SUPPORTED and facts.event_4688_version == 2
    assert facts.role is Role.UNKNOWN


def test_cim_object_with_build_and_product_type() -> None:
    facts = os_facts_from_cim({"Version": "10.0.17763", "BuildNumber": "17763", "ProductType": 2})
    assert facts.build == 17763 and facts.role is Role.DOMAIN_CONTROLLER


def test_get_computerinfo_os_version(windows_capture: Capture) -> None:
    (record,) = parse_format_list(
        windows_capture(D + "get-computerinfo_select_ws2019_servercore_msdocs_ja.txt").read_text()
    )
    assert record["OsServerLevel"] == "ServerCore"
    facts = os_facts(record["OsVersion"])
    assert facts.build == 17763 and facts.event_4688_version == 2


@pytest.mark.parametrize(
    "name",
    [
        "get-itemproperty_currentversion_ws2019_datacenter_msdocs_ja.txt",
        "get-itemproperty_currentversion_ws1809_sac_servercore_msdocs_ja.txt",
    ],
)
def test_currentversion_registry_numbers(windows_capture: Capture, name: str) -> None:
    (record,) = parse_format_list(windows_capture(D + name).read_text())
    version = f"{record['CurrentMajorVersionNumber']}.{record['CurrentMinorVersionNumber']}"
    facts = os_facts(version, build_number=record["CurrentBuild"])
    assert (facts.version, facts.build, facts.event_4688_version) == ("10.0", 17763, 2)


def test_cim_table_build_number(windows_capture: Capture) -> None:
    from procaudit.parsers._text import parse_format_table

    names, rows = parse_format_table(windows_capture(D + "get-ciminstance_win32_os_table_ko-KR.txt").read_text())
    row = dict(zip(names, rows[0].cells, strict=True))
    assert row["BuildNumber"] == "19000" and row["Organization"] == ""
    facts = os_facts(row["Version"], build_number=row["BuildNumber"])
    assert facts.build == 19000


@pytest.mark.parametrize(
    ("name", "version", "build_version"),
    [
        ("psversiontable_3.0_win8_ws2012_msdocs_sv.txt", "3.0", "6.2.9200.16481"),
        ("psversiontable_5.1.14300.1000_preview_msdocs_pt.txt", "5.1.14300.1000", "10.0.14300.1000"),
        ("psversiontable_5.1.14393.1884_ws2016.txt", "5.1.14393.1884", "10.0.14393.1884"),
        ("psversiontable_5.1.17763.1_1809.txt", "5.1.17763.1", "10.0.17763.1"),
        ("psversiontable_5.1.18362.752_win10_1903.txt", "5.1.18362.752", "10.0.18362.752"),
        ("psversiontable_5.1.19041.1320_win10.txt", "5.1.19041.1320", "10.0.19041.1320"),
        ("psversiontable_5.1.19041.2364.txt", "5.1.19041.2364", "10.0.19041.2364"),
        ("psversiontable_5.1.18362.752_PSVersion_object.txt", "5.1.18362.752", None),
    ],
)
def test_psversiontable(windows_capture: Capture, name: str, version: str, build_version: str | None) -> None:
    table = parse_psversiontable(windows_capture(D + name).read_bytes())
    assert table.ps_version == version
    assert table.build_version == build_version
    if build_version is not None:
        assert table.clr_version is not None and table.clr_version.startswith("4.0.30319.")
        assert table.values["WSManStackVersion"] == "3.0"
    assert table.major_minor == tuple(int(p) for p in version.split(".")[:2])


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: os_facts("Windows 10"), "not major.minor"),
        (lambda: os_facts("10.0.17763", build_number="19041"), "disagree"),
        (lambda: os_facts("10.0", product_type=4), "not 1, 2 or 3"),
        (lambda: os_facts("10.0", build_number="abc"), "not a number"),
        (lambda: os_facts_from_cim({"Caption": "Microsoft Windows 10 Pro"}), "no Version"),
        (lambda: parse_psversiontable("PSVersion 5.1\n"), "no Name/Value"),
        (lambda: parse_hotfix_table("Get-HotFix : Access denied\n"), "no table"),
    ],
)
def test_invalid_input(call: Callable[[], object], words: str) -> None:
    with pytest.raises(ParseError, match=words):
        call()
