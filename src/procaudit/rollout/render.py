"""The plan as a table and as self-contained HTML (JSON is ``Plan.to_json``)."""

from __future__ import annotations

from markupsafe import Markup
from rich.console import Group, RenderableType
from rich.table import Table

from procaudit.report.html import render_html
from procaudit.report.svg import Bar, Segment, colour, stacked_bars
from procaudit.rollout.plan import Plan, Wave
from procaudit.units import format_bytes, format_count, format_duration

_SHOWN_HOSTS = 6


def _flags(wave: Wave) -> str:
    flags = []
    if wave.dcs:
        flags.append(f"{len(wave.dcs)} DC")
    if wave.busy:
        flags.append(f"{len(wave.busy)} busy")
    if wave.volume_unknown:
        flags.append(f"{len(wave.volume_unknown)} unknown volume")
    if wave.over_rate_cap:
        flags.append("over rate cap")
    return ", ".join(flags)


def table(plan: Plan) -> RenderableType:
    lab = any(h.lab for h in plan.hosts)
    s = plan.settings
    waves = Table(
        title="procaudit plan" + (" - LAB hosts (models, not Windows)" if lab else ""),
        caption=f"caps per wave: {s.max_events_per_sec:g} events/s at peak, {s.max_hosts} hosts; soak "
        f"{format_duration(s.soak_seconds)}; stop when failures exceed {s.max_fail_percent:g}% of a wave",
    )
    for column in ("#", "Wave", "Kind", "Hosts", "+ev/s peak", "Cumul. ev/s", "+Log/day", "Fwd/day", "Resize", "Flags"):
        right = column in ("#", "+ev/s peak", "Cumul. ev/s", "+Log/day", "Fwd/day", "Resize")
        waves.add_column(column, justify="right" if right else "left")
    for w in plan.waves:
        shown = ", ".join(w.hosts[:_SHOWN_HOSTS]) + (
            f" (+{len(w.hosts) - _SHOWN_HOSTS})" if len(w.hosts) > _SHOWN_HOSTS else ""
        )
        waves.add_row(
            str(w.index),
            w.name,
            w.kind,
            f"{len(w.hosts)}: {shown}",
            format_count(w.added_events_per_sec_peak),
            format_count(w.cumulative_events_per_sec_peak),
            format_bytes(w.added_bytes_per_day),
            format_bytes(w.forwarded_bytes_per_day),
            str(len(w.log_size_changes)),
            _flags(w),
        )
    resizes = Table(title="Security log sizes the plan will request")
    for column in ("Wave", "Host", "Current", "Requested", "For"):
        resizes.add_column(column, justify="left" if column in ("Wave", "Host") else "right")
    for w in plan.waves:
        for change in w.log_size_changes:
            resizes.add_row(
                w.name,
                change.host,
                format_bytes(change.current_max_size),
                format_bytes(change.requested_max_size),
                f"{change.retention_days:g} days",
            )
    parts: list[RenderableType] = [waves]
    if resizes.row_count:
        parts.append(resizes)
    return Group(*parts)


def chart(plan: Plan) -> str:
    """One bar per wave: its added peak events/s, stacked by inventory group."""
    groups = sorted({h.group for h in plan.hosts})
    group_colour = {g: colour(i) for i, g in enumerate(groups)}
    by_host = {h.host: h for h in plan.hosts}
    bars = []
    for w in plan.waves:
        per_group: dict[str, float] = {}
        for name in w.hosts:
            host = by_host[name]
            per_group[host.group] = per_group.get(host.group, 0.0) + (host.events_per_sec_peak or 0.0)
        segments = [Segment(g, v, group_colour[g]) for g, v in sorted(per_group.items())]
        note = f"{format_count(w.added_events_per_sec_peak)} ev/s, {len(w.hosts)} host(s)"
        if w.volume_unknown:
            note += f", {len(w.volume_unknown)} unknown"
        bars.append(Bar(f"{w.index}. {w.name} ({w.kind})", segments, note))
    return stacked_bars(
        bars,
        title="Events/s each wave adds at peak, stacked by group",
        unit="events/s",
        legend=[(g, group_colour[g]) for g in groups],
        marker=(plan.settings.max_events_per_sec, f"cap {plan.settings.max_events_per_sec:g} events/s per wave"),
    )


def to_html(plan: Plan) -> str:
    return render_html("plan.html.j2", plan=plan, chart=Markup(chart(plan)), lab=any(h.lab for h in plan.hosts))
