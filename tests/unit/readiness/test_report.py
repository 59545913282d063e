"""Report renderers: HTML escaping and self-containment, CSV and JSON shapes."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable

from procaudit.facts import HostFacts
from procaudit.readiness.catalog import load_catalog
from procaudit.readiness.engine import _report, readiness_for
from procaudit.report.readiness import chart_model, readiness_csv, readiness_html

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
    assert html.count('class="bar bar-') == 2  # g&1: one not-ready segment; ungrouped: one ready segment


def test_chart_bars_are_proportional(lab_facts: Facts) -> None:
    catalog = load_catalog()
    hosts = [readiness_for(lab_facts(p), catalog, groups=["a"]) for p in ("ready", "ready", "cmdline-off")]
    hosts.append(readiness_for(lab_facts("ready"), catalog, groups=["b"]))
    chart = chart_model(_report(hosts, catalog, "winrm"), bar_width=600)
    a, b = chart["rows"]
    assert [(s.kind, s.count, s.width) for s in a.segments] == [("ready", 2, 400.0), ("not_ready", 1, 200.0)]
    assert [(s.kind, s.width) for s in b.segments] == [("ready", 200.0)]


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
