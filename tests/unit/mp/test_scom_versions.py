"""Management pack versions as push reads and bumps them."""

from __future__ import annotations

import pytest

from procaudit.detections.scom import bump_version, check_nonce, parse_version
from procaudit.errors import UserInputError


@pytest.mark.parametrize(
    ("installed", "bumped"),
    [
        ("1.0.0.0", "1.0.0.1"),
        ("1.0.0.9", "1.0.0.10"),
        ("7.5.8501.0", "7.5.8501.1"),
        ("1.0.3.2147483647", "1.0.4.0"),  # .NET Version parts are Int32: carry into the build number
        ("1.2147483647.2147483647.2147483647", "2.0.0.0"),
        (" 2.0.0.5 ", "2.0.0.6"),
    ],
)
def test_bump(installed: str, bumped: str) -> None:
    assert bump_version(installed) == bumped
    assert parse_version(bumped) > parse_version(installed)


@pytest.mark.parametrize("text", ["1.0", "1.0.0.0.0", "a.b.c.d", "1.0.0.-1", "", "12345678901.0.0.0", "\u0661.0.0.0"])
def test_bad_versions(text: str) -> None:
    with pytest.raises(UserInputError, match="four numbers"):
        parse_version(text)


def test_nothing_left_to_bump() -> None:
    top = ".".join(["2147483647"] * 4)
    with pytest.raises(UserInputError, match="cannot be bumped"):
        bump_version(top)


@pytest.mark.parametrize("nonce", ["", "0" * 31, "0" * 33, "A" * 32, "g" * 32, "0" * 32 + "\n"])
def test_bad_nonces(nonce: str) -> None:
    with pytest.raises(UserInputError):
        check_nonce(nonce)


def test_good_nonce() -> None:
    assert check_nonce("0123456789abcdef0123456789abcdef") == "0123456789abcdef0123456789abcdef"
