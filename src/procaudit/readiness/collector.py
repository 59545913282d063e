"""The offline collector: a standalone ``Collect-ProcAudit.ps1`` that runs the readiness probe unchanged.

The probe text (``checks/Get-ProcAuditFacts.ps1``) is embedded byte for byte as a script block, with its
SHA-256 in the help and in every output file, so an administrator can check it is the reviewed probe and
``procaudit check --evidence`` can tell which probe produced a file. The template is
``checks/Collect-ProcAudit.ps1.j2``; the only values rendered into it are procaudit's own constants and the
validated probe parameters.
"""

from __future__ import annotations

import hashlib

import jinja2

from procaudit.content import content_path
from procaudit.errors import ContentError
from procaudit.facts import GET_PROCAUDIT_FACTS, ProbeParams
from procaudit.readiness.engine import EVIDENCE_FORMAT

TEMPLATE = "Collect-ProcAudit.ps1.j2"


def probe_sha256() -> str:
    return hashlib.sha256(GET_PROCAUDIT_FACTS.text.encode("utf-8")).hexdigest()


def _ps_literal(text: str) -> str:
    """A PowerShell single-quoted string literal."""
    return "'" + text.replace("'", "''") + "'"


def render_collector(params: ProbeParams | None = None) -> str:
    """The collector script's text.

    Raises:
        ContentError: the template is missing.
    """
    probe = params or ProbeParams()
    path = content_path("checks", TEMPLATE)
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContentError(f"cannot read the collector template {path}: {exc.strerror}") from exc
    environment = jinja2.Environment(autoescape=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(source).render(
        probe=GET_PROCAUDIT_FACTS.text.rstrip("\n"),
        probe_sha256=probe_sha256(),
        format=EVIDENCE_FORMAT,
        window_hours=int(probe.window_hours),
        max_events=int(probe.max_events),
        policy_names=", ".join(_ps_literal(n) for n in probe.policy_names),
    )
