"""wevtutil gl and Get-WinEvent -ListLog views, on every capture in 03_wevtutil_security_channel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from procaudit.errors import ParseError
from procaudit.parsers.sddl import DEFAULT_SECURITY_CHANNEL_SDDL
from procaudit.parsers.wevtutil import parse_wevtutil_gl

Capture = Callable[[str], Path]
D = "03_wevtutil_security_channel/"
EVTX = "%SystemRoot%\\System32\\Winevt\\Logs\\"


@pytest.mark.parametrize(
    ("name", "channel", "max_size"),
    [
        ("wevtutil_gl_security_workstation_default_20MB.txt", "Security", 20 * 1024 * 1024),
        ("wevtutil_get-log_security_WIN-BO2CT95INDP_2019.txt", "Security", 20 * 1024 * 1024),
        ("wevtutil_gl_security_ps_prompt_cis_lab.txt", "Security", 20 * 1024 * 1024),
        ("wevtutil_gl_security_dc_lowercase_name_128MB.txt", "security", 128 * 1024 * 1024),
    ],
)
def test_complete_security_outputs(windows_capture: Capture, name: str, channel: str, max_size: int) -> None:
    config = parse_wevtutil_gl(windows_capture(D + name).read_bytes(), source=name)
    assert config.name == channel
    assert config.enabled is True
    assert config.type == "Admin"
    assert config.owning_publisher is None
    assert config.isolation == "Custom"
    assert config.channel_access == DEFAULT_SECURITY_CHANNEL_SDDL
    assert config.log_file_name == f"{EVTX}{channel}.evtx"
    assert (config.retention, config.auto_backup, config.log_mode) == (False, False, "Circular")
    assert config.max_size == max_size
    assert config.file_max == 1
    assert config.other == {}
    assert config.extra_readers() == []
    readers = config.readers()
    assert readers is not None and [p.sid for p in readers] == ["S-1-5-18", "S-1-5-32-544", "S-1-5-32-573"]


def test_partial_doc_copy_with_network_service_alias(windows_capture: Capture) -> None:
    config = parse_wevtutil_gl(windows_capture(D + "wevtutil_gl_security_partial_with_NS_ace_zh_doc.txt").read_text())
    assert config.name is None and config.max_size is None and config.log_mode is None
    assert config.channel_access == DEFAULT_SECURITY_CHANNEL_SDDL + "(A;;0x1;;;NS)"
    extra = config.extra_readers()
    assert extra is not None and [(p.sid, p.alias) for p in extra] == [("S-1-5-20", "NS")]


def test_partial_doc_copy_with_network_service_sid_and_trailing_space(windows_capture: Capture) -> None:
    text = windows_capture(D + "wevtutil_gl_security_partial_with_S-1-5-20_ace_wazuh_doc.txt").read_text()
    assert ";;;S-1-5-20) \n" in text  # the source's trailing space
    config = parse_wevtutil_gl(text)
    assert config.name == "Security" and config.enabled is None
    assert config.channel_access == DEFAULT_SECURITY_CHANNEL_SDDL + "(A;;0x1;;;S-1-5-20)"
    extra = config.extra_readers()
    assert extra is not None and [p.name for p in extra] == [r"NT AUTHORITY\NETWORK SERVICE"]


def test_system_channel_then_format_list_stops_at_the_wevtutil_block(windows_capture: Capture) -> None:
    text = windows_capture(D + "wevtutil_gl_system_and_get-winevent_listlog_fl_ja-JP_TRUNCATED.txt").read_text()
    config = parse_wevtutil_gl(text)
    assert (config.name, config.isolation, config.max_size) == ("System", "System", 20971520)
    assert config.channel_access is not None and config.channel_access.endswith("(A;;0x1;;;S-1-5-32-573)")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("name: Security\nenabled: maybe\n", 2, "neither true nor false"),
        ("name: Security\nlogging:\n  maxSize: 20MB\n", 3, "not a number"),
    ],
)
def test_malformed_wevtutil_values(text: str, line: int, words: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_wevtutil_gl(text)
    assert caught.value.line == line and words in str(caught.value)


def test_text_without_wevtutil_output_is_an_error() -> None:
    with pytest.raises(ParseError, match="no 'name: value' line"):
        parse_wevtutil_gl("C:\\>wevtutil gl Security\nAccess is denied.\n")


def test_second_channel_in_the_text_is_not_merged() -> None:
    text = "name: Security\nlogging:\n  maxSize: 1\nname: System\nlogging:\n  maxSize: 2\n"
    assert parse_wevtutil_gl(text).max_size == 1
