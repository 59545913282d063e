"""Renderers for ``procaudit check`` and ``procaudit verify`` reports: Rich tables, CSV, and one HTML file.

The HTML report is self-contained (inline CSS and an inline SVG chart, no scripts, no external assets) so an
administrator can mail it; it is rendered with Jinja2 autoescaping from ``templates/readiness.html.j2``.
"""

from __future__ import annotations

import csv
import io
from typing import Final

from markupsafe import Markup
from rich.table import Table
from rich.text import Text

from procaudit.readiness.engine import HostStatus, ReadinessReport
from procaudit.readiness.evaluators import Status
from procaudit.report.html import render_html
from procaudit.report.svg import Bar, Segment, stacked_bars
from procaudit.verify import VerifyReport, VerifyStatus

_STYLE: Final = {
    "PASS": "green",
    "READY": "green",
    "FAIL": "red",
    "NOT_READY": "red",
    "WARN": "yellow",
    "UNKNOWN": "yellow",
    "ERROR": "bright_black",
    "SKIPPED": "bright_black",
}
_SHORT: Final = {"PASS": "ok", "FAIL": "FAIL", "WARN": "warn", "UNKNOWN": "?", "ERROR": "ERR", "SKIPPED": "-"}


def _styled(status: str, text: str | None = None) -> Text:
    return Text(text or status, style=_STYLE.get(status, ""))


# --- check ----------------------------------------------------------------------------------------------------


def readiness_table(report: ReadinessReport) -> Table:
    """One row per host, one column per check (short label), then what blocks it."""
    title = "procaudit check" + (" - LAB hosts (models, not Windows)" if report.lab else "")
    table = Table(title=title)
    table.add_column("Host")
    table.add_column("Status")
    for check in report.checks:
        table.add_column(check.short, justify="center")
    table.add_column("Blocked by / problem")
    for host in report.hosts:
        by_id = {f.check_id: f for f in host.findings}
        cells: list[Text | str] = [Text(host.host), _styled(host.status.value, host.status.value.replace("_", " "))]
        for check in report.checks:
            finding = by_id.get(check.id)
            cells.append(_styled(finding.status.value, _SHORT[finding.status.value]) if finding else "")
        if host.error is not None:
            cells.append(Text(f"{host.error.kind}: {host.error.message}"))
        else:
            shorts = {c.id: c.short for c in report.checks}
            cells.append(Text(", ".join(shorts.get(c, c) for c in host.blocked_by)))
        table.add_row(*cells)
    return table


def readiness_details(report: ReadinessReport) -> Table:
    """Every FAIL, WARN, UNKNOWN and ERROR finding with its detail."""
    table = Table(title="Findings that need attention")
    for column in ("Host", "Check", "Status", "Detail"):
        table.add_column(column, overflow="fold")
    for host in report.hosts:
        for finding in host.findings:
            if finding.status in (Status.PASS, Status.SKIPPED):
                continue
            table.add_row(Text(host.host), finding.check_id, _styled(finding.status.value), Text(finding.detail))
    return table


CSV_FIELDS: Final = ("host", "groups", "host_status", "check_id", "severity", "status", "detail", "lab")


def readiness_csv(report: ReadinessReport) -> str:
    """One row per host and check (a host in ERROR gets one row with its error)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for host in report.hosts:
        base = {"host": host.host, "groups": ";".join(host.groups), "host_status": host.status.value, "lab": host.lab}
        if host.error is not None:
            writer.writerow(
                {**base, "check_id": "", "severity": "", "status": "ERROR", "detail": str(host.error.message)}
            )
        for finding in host.findings:
            writer.writerow(
                {
                    **base,
                    "check_id": finding.check_id,
                    "severity": finding.severity.value,
                    "status": finding.status.value,
                    "detail": finding.detail,
                }
            )
    return buffer.getvalue()


_COLORS: Final = {"ready": "#2e7d32", "not_ready": "#c62828", "unknown": "#ef8f00", "error": "#616161"}
_LABELS: Final = {
    "ready": "ready",
    "not_ready": "not ready",
    "unknown": "could not tell",
    "error": "unreachable / error",
}


def readiness_chart(report: ReadinessReport) -> str:
    """One stacked bar per group: its hosts ready, not ready, unknown and in error (an inline ``<svg>``)."""
    kinds = ("ready", "not_ready", "unknown", "error")
    bars = [
        Bar(
            label=group.group,
            segments=[Segment(_LABELS[k], float(getattr(group, k)), _COLORS[k]) for k in kinds if getattr(group, k)],
            note=f"{group.ready}/{group.total} ready",
        )
        for group in report.summary.groups
    ]
    return stacked_bars(
        bars,
        title="Hosts ready, not ready, unknown and in error, per group",
        unit="host(s)",
        legend=[(_LABELS[k], _COLORS[k]) for k in kinds],
    )


def readiness_html(report: ReadinessReport) -> str:
    """The self-contained HTML report."""
    remediations = []
    for check in report.checks:
        failing = [
            h.host for h in report.hosts for f in h.findings if f.check_id == check.id and f.status == Status.FAIL
        ]
        warning = [
            h.host for h in report.hosts for f in h.findings if f.check_id == check.id and f.status == Status.WARN
        ]
        if failing or warning:
            remediations.append({"check": check, "failing": failing, "warning": warning})
    remediations.sort(key=lambda r: (-len(r["failing"]), -len(r["warning"])))  # type: ignore[arg-type]
    hosts_first = sorted(
        report.hosts,
        key=lambda h: (
            [HostStatus.ERROR, HostStatus.NOT_READY, HostStatus.UNKNOWN, HostStatus.READY].index(h.status),
            h.host,
        ),
    )
    view = report.model_copy(update={"hosts": hosts_first})
    return render_html(
        "readiness.html.j2",
        report=view,
        generated=report.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        chart=Markup(readiness_chart(report)),
        remediations=remediations,
        severity={c.id: c.severity.value for c in report.checks},
    )


# --- verify ---------------------------------------------------------------------------------------------------


def verify_table(report: VerifyReport) -> Table:
    title = "procaudit verify" + (" - LAB hosts (models, not Windows)" if report.lab else "")
    if not report.command_lines_shown:
        title += " - command lines redacted (--show-command-lines)"
    table = Table(title=title)
    scom = any(h.scom is not None for h in report.hosts)
    columns = ["Host", "Status", "Reason", "Latency ms", "Command line", "Detail"] + (["SCOM alert"] if scom else [])
    for column in columns:
        table.add_column(column, justify="right" if column == "Latency ms" else "left", overflow="fold")
    for host in report.hosts:
        # Text(), not markup: a redacted command line reads "[redacted: ...]", which Rich would take for a tag.
        row: list[Text | str] = [
            Text(host.host),
            _styled(host.status.value),
            host.reason,
            f"{host.latency_ms:.0f}" if host.latency_ms is not None and host.status == VerifyStatus.PASS else "",
            Text((host.event.command_line or "") if host.event else ""),
            Text(host.detail),
        ]
        if scom:
            row.append(_styled(host.scom.status) if host.scom else Text(""))
        table.add_row(*row)
    return table


VERIFY_CSV_FIELDS: Final = (
    "host",
    "status",
    "reason",
    "latency_ms",
    "waited_ms",
    "record_id",
    "new_process_name",
    "command_line",
    "detail",
    "lab",
)


def verify_csv(report: VerifyReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=VERIFY_CSV_FIELDS)
    writer.writeheader()
    for host in report.hosts:
        writer.writerow(
            {
                "host": host.host,
                "status": host.status.value,
                "reason": host.reason,
                "latency_ms": host.latency_ms if host.latency_ms is not None else "",
                "waited_ms": host.waited_ms if host.waited_ms is not None else "",
                "record_id": host.event.record_id if host.event else "",
                "new_process_name": (host.event.new_process_name or "") if host.event else "",
                "command_line": (host.event.command_line or "") if host.event else "",
                "detail": host.detail,
                "lab": host.lab,
            }
        )
    return buffer.getvalue()
