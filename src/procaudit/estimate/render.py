"""The estimate as a table, CSV and self-contained HTML (JSON is ``EstimateReport.to_json``)."""

from __future__ import annotations

import csv
import io

from markupsafe import Markup
from rich.console import Group, RenderableType
from rich.table import Table

from procaudit.estimate.report import EstimateReport
from procaudit.report.html import render_html
from procaudit.report.svg import Bar, Segment, colour, stacked_bars
from procaudit.units import format_bytes, format_count, format_duration

_CONFIDENCE_STYLE = {"high": "green", "medium": "yellow", "low": "red"}


def table(report: EstimateReport) -> RenderableType:
    lab = any(h.lab for h in report.hosts)
    hosts = Table(title="procaudit estimate" + (" - LAB hosts (models, not Windows)" if lab else ""))
    for column in (
        "Host",
        "Group",
        "Method",
        "Confidence",
        "4688/day",
        "Peak/h",
        "Peak ev/s",
        "Log/day",
        "Forwarded/day",
        "Days kept",
        f"Size for {report.settings.retention_days:g} d",
        "Problem",
    ):
        numeric = column not in ("Host", "Group", "Method", "Confidence", "Problem")
        hosts.add_column(
            column, justify="right" if numeric else "left", no_wrap=column == "Host" or column.startswith("Size")
        )
    notes = Table(title="notes", show_header=False, box=None)
    notes.add_column("Host", no_wrap=True)
    notes.add_column("Note")
    for h in report.hosts:
        e = h.estimate
        if e is None:
            problem = f"{h.error.kind}: {h.error.message}" if h.error else (h.reason or "")
            style = "red" if h.status == "ERROR" else "yellow"
            hosts.add_row(h.host, h.group, f"[{style}]{h.status}[/]", "", "", "", "", "", "", "", "", problem)
            continue
        size = format_bytes(e.max_size_needed) + (" (raise)" if e.max_size_change else "")
        hosts.add_row(
            h.host,
            h.group,
            e.method,
            f"[{_CONFIDENCE_STYLE[e.confidence]}]{e.confidence}[/]",
            format_count(e.events_per_day),
            format_count(e.peak_hour_events),
            format_count(e.events_per_sec_peak),
            format_bytes(e.process_bytes_per_day),
            format_bytes(e.forwarded_bytes_per_day),
            format_count(e.days_kept) if e.days_kept is not None else "",
            size,
            "",
        )
        for note in e.notes:
            notes.add_row(h.host, note)
    groups = Table(title="totals by group")
    for column in ("Group", "Hosts", "Estimated", "4688/day", "Peak ev/s (sum)", "Log/day", "Forwarded/day", "Resize"):
        groups.add_column(column, justify="left" if column == "Group" else "right")
    for g in [*report.groups, report.totals]:
        groups.add_row(
            g.group,
            str(g.hosts),
            str(g.estimated),
            format_count(g.events_per_day),
            format_count(g.events_per_sec_peak),
            format_bytes(g.process_bytes_per_day),
            format_bytes(g.forwarded_bytes_per_day),
            str(g.log_size_changes),
            style="bold" if g is report.totals else None,
        )
    return Group(hosts, notes, groups) if notes.row_count else Group(hosts, groups)


CSV_FIELDS = [
    "host",
    "address",
    "group",
    "status",
    "lab",
    "role",
    "method",
    "confidence",
    "coverage_seconds",
    "rhythm_factor",
    "observed_events",
    "events_per_day",
    "mean_hour_events",
    "peak_hour_events",
    "peak_hour",
    "events_per_sec_mean",
    "events_per_sec_peak",
    "record_bytes",
    "record_bytes_measured",
    "already_audited",
    "process_bytes_per_day",
    "added_bytes_per_day",
    "forwarded_bytes_per_day",
    "log_max_size",
    "log_bytes_per_day_now",
    "projected_bytes_per_day",
    "days_kept",
    "max_size_needed",
    "max_size_change",
    "notes",
    "error_kind",
    "error",
]


def to_csv(report: EstimateReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for h in report.hosts:
        row: dict[str, object] = {"host": h.host, "address": h.address, "group": h.group, "status": h.status}
        row["lab"] = h.lab
        if h.estimate is not None:
            e = h.estimate
            row.update(e.model_dump(mode="json", exclude={"log", "notes"}))
            row["log_max_size"] = e.log.max_size
            row["log_bytes_per_day_now"] = round(e.log.bytes_per_day_now) if e.log.bytes_per_day_now else ""
            row["notes"] = "; ".join(e.notes)
        else:
            row["notes"] = h.reason or ""
        if h.error is not None:
            row["error_kind"], row["error"] = h.error.kind, h.error.message
        writer.writerow(row)
    return buffer.getvalue()


def chart(report: EstimateReport) -> str:
    """One bar per group, stacked by its hosts' events/day, and an estate bar stacked by group."""
    group_colour = {g.group: colour(i) for i, g in enumerate(report.groups)}
    bars = []
    for g in report.groups:
        segments = [
            Segment(h.host, h.estimate.events_per_day, group_colour[g.group])
            for h in report.hosts
            if h.group == g.group and h.estimate is not None
        ]
        missing = g.hosts - g.estimated
        note = f"{format_count(g.events_per_day)}/day" + (f" (+{missing} unknown)" if missing else "")
        bars.append(Bar(g.group, segments, note))
    estate = [Segment(g.group, g.events_per_day, group_colour[g.group]) for g in report.groups]
    bars.append(Bar("all hosts", estate, f"{format_count(report.totals.events_per_day)}/day"))
    return stacked_bars(
        bars,
        title="4688 events per day: hosts stacked within each group, groups stacked for the estate",
        unit="events/day",
        legend=[(g.group, group_colour[g.group]) for g in report.groups],
    )


def to_html(report: EstimateReport) -> str:
    return render_html(
        "estimate.html.j2",
        report=report,
        chart=Markup(chart(report)),
        lab=any(h.lab for h in report.hosts),
        window=format_duration(report.settings.window_hours * 3600),
    )
