"""Report renderers: HTML escaping and self-containment, CSV and JSON shapes."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable

from lxml import etree

from procaudit.facts import HostFacts
from procaudit.readiness.catalog import load_catalog
from procaudit.readiness.engine import _report, readiness_for
from procaudit.report.readiness import readiness_chart, readiness_csv, readiness_html

Facts = Callable[[str], HostFacts]


def test_html_is_self_contained_and_escapes_host_text(lab_facts: Facts) -> None:
    catalog = load_catalog()
    evil = lab_facts("cmdline-off").model_copy(update={"host": "<script>alert(1)</script>"})
    report = _report(
        [readiness_for(evil, catalog, groups=["g&1"]), readiness_for(lab_facts("ready"), catalog)], catalog, "winrm"
    )
    html = readiness_html(report)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "g&amp;1" in html
    assert not re.search(r"""(src|href)=["'](?!#|https://)""", html), "no local or relative assets"
    assert "<link" not in html and "@import" not in html
    assert html.count("data-value=") == 2  # g&1: one not-ready segment; ungrouped: one ready segment


def test_chart_bars_are_proportional(lab_facts: Facts) -> None:
    catalog = load_catalog()
    hosts = [readiness_for(lab_facts(p), catalog, groups=["a"]) for p in ("ready", "ready", "cmdline-off")]
    hosts.append(readiness_for(lab_facts("ready"), catalog, groups=["b"]))
    svg = etree.fromstring(readiness_chart(_report(hosts, catalog, "winrm")).encode())
    rows: dict[str, list[tuple[str, float, float]]] = {}
    for rect in svg.iter("{http://www.w3.org/2000/svg}rect"):
        if rect.get("data-value") is not None:
            rows.setdefault(rect.get("y") or "", []).append(
                (rect.get("fill") or "", float(rect.get("data-value") or 0), float(rect.get("width") or 0))
            )
    a, b = rows.values()
    assert [count for _fill, count, _width in a] == [2, 1] and [count for _f, count, _w in b] == [1]
    assert a[0][2] == 2 * a[1][2] == 2 * b[0][2]  # one scale: widths proportional to host counts
    assert a[0][0] == b[0][0] != a[1][0]  # ready has one colour, not ready another


def test_csv_and_json_shapes(lab_facts: Facts) -> None:
    catalog = load_catalog()
    report = _report([readiness_for(lab_facts("cmdline-off"), catalog, groups=["web", "prod"])], catalog, "winrm")
    rows = list(csv.DictReader(io.StringIO(readiness_csv(report))))
    assert len(rows) == len(catalog) and rows[0]["groups"] == "web;prod" and rows[0]["host_status"] == "NOT_READY"
    document = json.loads(report.to_json())
    assert document["schema"] == "procaudit.check/1"
    host = document["hosts"][0]
    assert {"host", "status", "findings"} <= set(host) and host["status"] == "NOT_READY"
    finding = next(f for f in host["findings"] if f["check_id"] == "cmdline_inclusion_enabled")
    assert {"check_id", "status", "detail"} <= set(finding) and finding["status"] == "FAIL" and finding["remediation"]
    assert document["summary"]["text"].startswith("0 of 1 hosts ready")
