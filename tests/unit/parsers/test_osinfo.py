"""OS decisions from locale-independent fields, fed from the captures in shared/data/windows/06_os_info."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from procaudit.errors import ParseError
from procaudit.parsers.osinfo import (
    CmdlineSupport,
    Role,
    os_facts,
)

Capture = Callable[[str], Path]
D = "06_os_info/"


def _format_list(text: str) -> dict[str, str]:
    """The ``Name : Value`` lines of a one-record Format-List capture (values used here fit on one line)."""
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^([A-Za-z]\w*) +: ?(.*)$", text, re.M)}


def test_hotfix_table_with_kb3004375_makes_windows_7_sp1_ready(windows_capture: Capture) -> None:
    text = windows_capture(D + "get-hotfix_security_updates_KRAKEN_2015_with_KB3004375.txt").read_text()
    ids = list(dict.fromkeys(re.findall(r"\bKB[0-9]{6,7}\b", text)))
    assert len(ids) == 130 and "KB3004375" in ids
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
    facts = os_facts(obj["Version"], build_number=obj.get("BuildNumber"), product_type=obj.get("ProductType"))
    assert (facts.major, facts.minor, facts.build) == (10, 0, None)
    assert facts.cmdline_support is CmdlineSupport.SUPPORTED and facts.event_4688_version == 2
    assert facts.role is Role.UNKNOWN


def test_get_computerinfo_os_version(windows_capture: Capture) -> None:
    record = _format_list(windows_capture(D + "get-computerinfo_select_ws2019_servercore_msdocs_ja.txt").read_text())
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
    record = _format_list(windows_capture(D + name).read_text())
    version = f"{record['CurrentMajorVersionNumber']}.{record['CurrentMinorVersionNumber']}"
    facts = os_facts(version, build_number=record["CurrentBuild"])
    assert (facts.version, facts.build, facts.event_4688_version) == ("10.0", 17763, 2)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: os_facts("Windows 10"), "not major.minor"),
        (lambda: os_facts("10.0.17763", build_number="19041"), "disagree"),
        (lambda: os_facts("10.0", product_type=4), "not 1, 2 or 3"),
        (lambda: os_facts("10.0", build_number="abc"), "not a number"),
    ],
)
def test_invalid_input(call: Callable[[], object], words: str) -> None:
    with pytest.raises(ParseError, match=words):
        call()
