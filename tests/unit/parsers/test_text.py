"""The shared text helpers on the shapes the captures do not cover."""

from __future__ import annotations

import pytest

from procaudit.errors import ParseError
from procaudit.parsers._text import decode_text, normalize_guid


def test_utf16le_without_bom_is_recognised() -> None:
    assert decode_text("name: Security\r\n".encode("utf-16-le"), source="x") == "name: Security\r\n"


def test_str_bom_is_dropped_and_bad_bytes_raise() -> None:
    assert decode_text("\ufeffabc", source="x") == "abc"
    with pytest.raises(ParseError, match="cannot decode"):
        decode_text(b"\xc3\x28", source="x")


def test_guid_normalisation() -> None:
    assert normalize_guid(" 0cce922b-69ae-11d9-bed3-505054503030 ") == "{0CCE922B-69AE-11D9-BED3-505054503030}"
    assert normalize_guid("{0CCE922B-69AE-11D9}") is None
