"""The inline SVG bar chart: one scale for every bar, text escaped, valid XML."""

from __future__ import annotations

import pytest
from lxml import etree

from procaudit.report.svg import Bar, Segment, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"


def widths(svg: str) -> list[list[float]]:
    root = etree.fromstring(svg.encode())
    rows: dict[str, list[float]] = {}
    for rect in root.iter(f"{SVG}rect"):
        if rect.get("data-value") is not None:
            rows.setdefault(rect.get("y") or "", []).append(float(rect.get("width") or 0))
    return [rows[y] for y in sorted(rows, key=float)]


def test_segments_share_one_scale() -> None:
    svg = stacked_bars(
        [Bar("a", [Segment("x", 30, "#000"), Segment("y", 10, "#111")]), Bar("b", [Segment("z", 20, "#222")])],
        title="t",
        unit="u",
    )
    (a_x, a_y), (b_z,) = widths(svg)
    assert a_x / a_y == pytest.approx(3.0, rel=1e-3) and (a_x + a_y) / b_z == pytest.approx(2.0, rel=1e-3)


def test_text_is_escaped_and_the_marker_extends_the_scale() -> None:
    svg = stacked_bars(
        [Bar("<b>&", [Segment("host<script>", 5, "#000")], note="a & b")],
        title="x < y",
        unit="ev/s",
        legend=[("g&", "#000")],
        marker=(10, "cap & more"),
    )
    root = etree.fromstring(svg.encode())  # well-formed XML
    assert not list(root.iter("script")) and "<script>" not in svg and "<b>" not in svg
    line = next(root.iter(f"{SVG}line"))
    (bar,) = widths(svg)[0]
    # the bar (5) is half the marker's value (10): the scale runs to the marker
    assert float(line.get("x1") or 0) - 170 == pytest.approx(2 * bar, rel=1e-3)


def test_empty_and_zero_bars_render() -> None:
    svg = stacked_bars([Bar("none", [Segment("z", 0, "#000")])], title="t", unit="u")
    etree.fromstring(svg.encode())
    assert widths(svg) == []
