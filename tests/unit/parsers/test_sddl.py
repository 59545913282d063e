"""SDDL parsing and channel readers, on the channel ACLs and GPO SDDL found in the real captures."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from procaudit.errors import ParseError
from procaudit.parsers.sddl import (
    DEFAULT_SECURITY_CHANNEL_SDDL,
    extra_readers,
    parse_sddl,
    principal,
    readers,
)

Capture = Callable[[str], Path]

EVENT_LOG_READERS = "S-1-5-32-573"
NETWORK_SERVICE = "S-1-5-20"


def test_default_security_channel_acl() -> None:
    sd = parse_sddl(DEFAULT_SECURITY_CHANNEL_SDDL)
    assert sd.owner is not None and sd.owner.sid == "S-1-5-32-544" and sd.owner.alias == "BA"
    assert sd.group is not None and sd.group.sid == "S-1-5-18"
    assert sd.dacl is not None
    assert [(a.ace_type, a.rights, a.trustee.sid) for a in sd.dacl] == [
        ("A", 0xF0005, "S-1-5-18"),
        ("A", 0x5, "S-1-5-32-544"),
        ("A", 0x1, EVENT_LOG_READERS),
    ]
    assert sd.sacl is None
    names = [p.name for p in readers(sd)]
    assert names == [r"NT AUTHORITY\SYSTEM", r"BUILTIN\Administrators", r"BUILTIN\Event Log Readers"]
    assert extra_readers(sd) == []


def test_event_log_readers_alias_and_sid_are_one_principal() -> None:
    assert principal("ER") == principal("S-1-5-32-573")
    assert principal("NS").key == principal("s-1-5-20").key == NETWORK_SERVICE


def _channel_access(path: Path) -> str:
    match = re.search(r"channelAccess: (\S+)", path.read_text(encoding="utf-8"))
    assert match, path
    return match.group(1)


@pytest.mark.parametrize(
    "relpath",
    [
        "03_wevtutil_security_channel/wevtutil_gl_security_partial_with_NS_ace_zh_doc.txt",
        "03_wevtutil_security_channel/wevtutil_gl_security_partial_with_S-1-5-20_ace_wazuh_doc.txt",
    ],
)
def test_wef_acl_adds_network_service_as_extra_reader(windows_capture: Capture, relpath: str) -> None:
    extra = extra_readers(_channel_access(windows_capture(relpath)))
    assert [(p.sid, p.alias, p.name) for p in extra] == [(NETWORK_SERVICE, "NS", r"NT AUTHORITY\NETWORK SERVICE")]


def test_system_channel_acl_from_ja_jp_host(windows_capture: Capture) -> None:
    sddl = _channel_access(
        windows_capture(
            "03_wevtutil_security_channel/wevtutil_gl_system_and_get-winevent_listlog_fl_ja-JP_TRUNCATED.txt"
        )
    )
    sd = parse_sddl(sddl)
    assert sd.dacl is not None and len(sd.dacl) == 9
    sids = [p.sid for p in readers(sd)]
    # S-1-5-33 (WRITE RESTRICTED) has 0x2 only: it may write, not read.
    assert sids == [
        "S-1-5-18",
        "S-1-5-32-544",
        "S-1-5-32-551",
        "S-1-5-32-549",
        "S-1-5-4",
        "S-1-5-6",
        "S-1-5-3",
        EVENT_LOG_READERS,
    ]
    assert principal("S-1-5-3").name == r"NT AUTHORITY\BATCH"
    assert [p.alias for p in extra_readers(sd)] == ["BO", "SO", "IU", "SU", None]


def test_gpo_security_descriptor_from_a_real_gpo_report(windows_capture: Capture) -> None:
    data = windows_capture("02_gpresult_xml/gporeport_nsa_shb_windows10_computer_A2A38432.utf16le.xml").read_bytes()
    match = re.search(r"<SDDL[^>]*>([^<]+)</SDDL>", data.decode("utf-16"))
    assert match
    sd = parse_sddl(match.group(1))
    assert sd.owner is not None and (sd.owner.sid, sd.owner.alias, sd.owner.name) == (None, "DA", "Domain Admins")
    assert sd.dacl_flags == "PAI" and sd.sacl_flags == "AI"
    assert sd.dacl is not None and len(sd.dacl) == 8
    first = sd.dacl[0]
    assert (first.ace_type, first.flags, first.rights, first.object_guid) == (
        "OA",
        "CI",
        0x100,
        "edacfd8f-ffb3-11d1-b41d-00a0c968f939",
    )
    full = sd.dacl[1]
    assert full.rights_text == "CCDCLCSWRPWPDTLOSDRCWDWO" and full.rights == 0xF00FF  # 8 DS bits + SD RC WD WO; no CR
    enterprise_admins = sd.dacl[3].trustee
    assert enterprise_admins.sid == "S-1-5-21-852640682-2439737213-2645099010-519" and enterprise_admins.name is None
    assert sd.dacl[7].inherit_only
    assert sd.sacl is not None and len(sd.sacl) == 3 and sd.sacl[0].trustee.alias == "WD"


def test_deny_inherit_only_generic_and_null_dacl() -> None:
    assert [p.alias for p in readers("O:BAG:SYD:(D;;0x1;;;NS)(A;;0x1;;;NS)(A;;0x1;;;SY)")] == ["SY"]
    assert [p.alias for p in readers("O:BAG:SYD:(A;IO;0x1;;;BU)(A;;0x1;;;SY)")] == ["SY"]
    assert [p.alias for p in readers("O:BAG:SYD:(A;;GR;;;AU)")] == ["AU"]
    assert [p.alias for p in readers("O:BAG:SYD:(A;;0x2;;;AU)")] == []
    assert [p.alias for p in readers("O:BAG:SY")] == ["WD"]  # no DACL at all: everyone has access


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("O:BAG:SYD:(A;;0x1;;;SY", "unclosed"),
        ("O:BAG:SYD:(A;;0x1;;SY)", "has 5 fields"),
        ("O:BAG:SYD:(A;;ZZ;;;SY)", "unknown access right"),
        ("O:BAG:SYD:(A;;0x1;;;XX)", "neither a SID nor a known SDDL alias"),
        ("channelAccess", "expected O:, G:, D: or S: at offset 0"),
        ("", "empty"),
        ("O:BAG:SYD:(A;;0x1;;;SY)D:(A;;0x1;;;SY)", "D: appears twice"),
    ],
)
def test_malformed_sddl(text: str, words: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_sddl(text)
    assert words in str(caught.value)
