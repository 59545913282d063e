"""Self-contained HTML reports from Jinja2 templates shipped in ``procaudit/report/templates``."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from procaudit.units import format_bytes, format_count, format_duration


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("procaudit.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["bytes"] = format_bytes
    env.filters["count"] = format_count
    env.filters["duration"] = format_duration
    env.filters["num"] = lambda value: f"{value:g}"
    return env


def render_html(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with autoescaping; pass trusted SVG as ``markupsafe.Markup``."""
    return _environment().get_template(template).render(**context)
