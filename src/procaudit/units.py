"""Durations and sizes as people type and read them: ``30m``, ``7d``, ``1.5 GiB``."""

from __future__ import annotations

import math
import re

from procaudit.errors import UserInputError

_DURATION = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, *, option: str, default_unit: str = "s") -> float:
    """Seconds in ``text`` (``90``, ``90s``, ``30m``, ``36h``, ``7d``, ``2w``). Raises ``UserInputError``."""
    match = _DURATION.match(text)
    if not match:
        raise UserInputError(f"{option} {text!r}: expected a number with a unit s, m, h, d or w (e.g. 30m, 7d)")
    unit = (match.group("unit") or default_unit).lower()
    return float(match.group("number")) * _SECONDS[unit]


def format_duration(seconds: float) -> str:
    """``1800`` -> ``30m``; ``90`` -> ``90s``; ``36731`` -> ``10h12m``; ``604800`` -> ``7d``."""
    whole = round(seconds)
    if whole < 120:
        return f"{max(whole, 0)}s"
    minutes = round(whole / 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    text = (f"{days}d" if days else "") + (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text or "0s"


def format_bytes(value: float | None) -> str:
    """Binary units, three significant figures: ``20971520`` -> ``20.0 MiB``."""
    if value is None or math.isnan(value):
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.3g} {unit}" if size < 100 else f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.0f} TiB"  # pragma: no cover - the loop returns


def format_count(value: float | None) -> str:
    """``12345.6`` -> ``12,346``; small rates keep their decimals (``0.42``)."""
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
