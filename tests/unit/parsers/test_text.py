"""The shared text helpers on the shapes the captures do not cover."""

from __future__ import annotations

import pytest

from procaudit.errors import ParseError
from procaudit.parsers._text import decode_text, normalize_guid, parse_format_list, parse_format_table


def test_utf16le_without_bom_is_recognised() -> None:
    assert decode_text("name: Security\r\n".encode("utf-16-le"), source="x") == "name: Security\r\n"


def test_str_bom_is_dropped_and_bad_bytes_raise() -> None:
    assert decode_text("\ufeffabc", source="x") == "abc"
    with pytest.raises(ParseError, match="cannot decode"):
        decode_text(b"\xc3\x28", source="x")


def test_guid_normalisation() -> None:
    assert normalize_guid(" 0cce922b-69ae-11d9-bed3-505054503030 ") == "{0CCE922B-69AE-11D9-BED3-505054503030}"
    assert normalize_guid("{0CCE922B-69AE-11D9}") is None


def test_format_list_joins_wrapped_values_and_splits_records() -> None:
    text = (
        "Name  : Security\n"
        "Path  : C:\\Windows\\System32\\winevt\\Lo\n"
        "        gs\\Security.evtx\n"
        "Empty :\n"
        "\n"
        "Name  : System\n"
    )
    assert parse_format_list(text) == [
        {"Name": "Security", "Path": "C:\\Windows\\System32\\winevt\\Logs\\Security.evtx", "Empty": ""},
        {"Name": "System"},
    ]


def test_format_table_without_table() -> None:
    assert parse_format_table("no table here\n") == ((), [])
