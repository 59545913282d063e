"""Durations and sizes as people type and read them."""

from __future__ import annotations

import pytest

from procaudit.errors import UserInputError
from procaudit.units import format_bytes, format_count, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("30 min", 1800), ("36h", 129600), ("7d", 604800), ("2w", 1209600),
     ("1.5h", 5400), ("0", 0), (" 7D ", 604800)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, option="--x") == seconds


def test_parse_duration_default_unit() -> None:
    assert parse_duration("36", option="--window", default_unit="h") == 36 * 3600


@pytest.mark.parametrize("text", ["", "m", "-5m", "5 minutes", "1e3", "5y", "ten"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(UserInputError, match="--soak"):
        parse_duration(text, option="--soak")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.6, "60s"), (90, "90s"), (1800, "30m"), (5400, "1h30m"), (604800, "7d"), (36731, "10h12m"),
     (90000, "1d1h")],
)  # fmt: skip
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"), (20 * 1024**2, "20 MiB"), (1536 * 1024**2, "1.5 GiB"),
     (512 * 1024**2, "512 MiB"), (None, "")],
)  # fmt: skip
def test_format_bytes(value: float | None, text: str) -> None:
    assert format_bytes(value) == text


def test_format_count() -> None:
    assert [format_count(v) for v in (12345.6, 42.25, 0.4213, None)] == ["12,346", "42.2", "0.42", ""]
