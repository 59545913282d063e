"""Inline SVG charts for self-contained HTML reports (no script, no external file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999")


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


@dataclass(frozen=True)
class Segment:
    label: str
    """Shown as the segment's tooltip, with its value."""
    value: float
    colour: str


@dataclass(frozen=True)
class Bar:
    label: str
    segments: list[Segment] = field(default_factory=list)
    note: str = ""
    """Text after the bar (e.g. its total)."""

    @property
    def total(self) -> float:
        return sum(max(s.value, 0.0) for s in self.segments)


def stacked_bars(
    bars: list[Bar],
    *,
    title: str,
    unit: str,
    width: int = 860,
    label_width: int = 170,
    note_width: int = 170,
    bar_height: int = 20,
    gap: int = 8,
    legend: list[tuple[str, str]] | None = None,
    marker: tuple[float, str] | None = None,
) -> str:
    """Horizontal bars, each a stack of segments; lengths share one scale. Returns an ``<svg>`` element.

    ``marker`` draws a dashed vertical line at a value on that scale (a cap), with its label.
    """
    top = 44 if marker else 28
    legend_rows = 1 if legend else 0
    height = top + len(bars) * (bar_height + gap) + legend_rows * 24 + 8
    scale_max = max([b.total for b in bars] + ([marker[0]] if marker else []), default=0.0) or 1.0
    plot = width - label_width - note_width - 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-weight="bold" font-size="13">{escape(title)}</text>',
    ]
    for row, bar in enumerate(bars):
        y = top + row * (bar_height + gap)
        parts.append(
            f'<text x="{label_width - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end">{escape(bar.label)}</text>'
        )
        x = float(label_width)
        for segment in bar.segments:
            length = max(segment.value, 0.0) / scale_max * plot
            if length <= 0:
                continue
            parts.append(
                f'<rect x="{x:.2f}" y="{y}" width="{length:.2f}" height="{bar_height}" fill="{segment.colour}" '
                f'stroke="#ffffff" stroke-width="1" data-value="{segment.value:g}">'
                f"<title>{escape(segment.label)}: {segment.value:,.1f} {escape(unit)}</title></rect>"
            )
            x += length
        parts.append(f'<text x="{x + 6:.2f}" y="{y + bar_height * 0.7:.1f}">{escape(bar.note)}</text>')
    if marker is not None:
        x = label_width + marker[0] / scale_max * plot
        bottom = top + len(bars) * (bar_height + gap) - gap
        parts.append(
            f'<line x1="{x:.2f}" y1="{top - 4}" x2="{x:.2f}" y2="{bottom + 2}" stroke="#b00020" '
            f'stroke-dasharray="4 3" stroke-width="1.5"><title>{escape(marker[1])}</title></line>'
        )
        parts.append(f'<text x="{x + 3:.2f}" y="{top - 6}" fill="#b00020" font-size="11">{escape(marker[1])}</text>')
    if legend:
        y = top + len(bars) * (bar_height + gap) + 6
        x = float(label_width)
        for label, fill in legend:
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="12" height="12" fill="{fill}"/>')
            parts.append(f'<text x="{x + 16:.1f}" y="{y + 10}">{escape(label)}</text>')
            x += 28 + 7 * len(label)
    parts.append("</svg>")
    return "\n".join(parts)
