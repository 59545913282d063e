"""The lab's implementations of the shipped scripts' contracts.

A script is recognised only by its exact text: the lab loads every shipped ``.ps1`` from ``checks/`` and
``deploy/`` and refuses any other text, which proves that nothing was interpolated into a script on the
way. Each handler receives the modelled host and the PSRP-bound parameters and returns what the real
script would write: one JSON document in Windows PowerShell 5.1's ``ConvertTo-Json -Compress`` style.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from procaudit.content import ContentFolder, content_path
from procaudit.lab.faults import Fault
from procaudit.lab.model import LabHost, LabWorld
from procaudit.lab.wsman import ScriptOutcome, ScriptRun

Handler = Callable[["HandlerContext", ScriptRun], ScriptOutcome]


@dataclass
class HandlerContext:
    """What a script's lab implementation may touch: its host, and the rest of the lab (for DCs, SCOM)."""

    host: LabHost
    world: LabWorld


HANDLERS: dict[str, Handler] = {}
_HANG_SECONDS = 900.0


def handles(script_name: str) -> Callable[[Handler], Handler]:
    """Register the lab implementation of ``<script_name>.ps1``."""

    def register(handler: Handler) -> Handler:
        HANDLERS[script_name] = handler
        return handler

    return register


def _load_handlers() -> None:
    """Import every handler module (each registers itself with ``@handles``)."""
    import procaudit.lab.handlers  # noqa: F401


@cache
def shipped_scripts() -> dict[str, str]:
    """Exact text of every shipped script -> its name (``Get-HostIdentity``)."""
    scripts: dict[str, str] = {}
    folders: tuple[ContentFolder, ...] = ("checks", "deploy")
    for folder in folders:
        root: Path = content_path(folder)
        for path in sorted(root.glob("*.ps1")):
            scripts[path.read_text(encoding="utf-8")] = path.stem
    return scripts


def ps_json(value: Any) -> str:
    """Serialise like Windows PowerShell 5.1 ``ConvertTo-Json -Compress``.

    5.1 uses JavaScriptSerializer, which escapes ``<``, ``>``, ``&`` and ``'`` as ``\\u003c`` etc.; our
    parsers must cope with that, so the lab reproduces it.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(char, escaped)
    return text


def make_executor(host: LabHost, faults: list[Fault], world: LabWorld) -> Callable[[ScriptRun], ScriptOutcome]:
    """The executor a lab endpoint calls for every pipeline on ``host``."""
    context = HandlerContext(host, world)

    def execute(run: ScriptRun) -> ScriptOutcome:
        name = shipped_scripts().get(run.script)
        if name is None:
            return ScriptOutcome(
                failure="procaudit lab: refused a script whose text is not byte-identical to any shipped .ps1 file "
                f"in checks/ or deploy/ ({len(run.script)} characters, starting {run.script[:60]!r})"
            )
        _load_handlers()
        handler = HANDLERS.get(name)
        if handler is None:
            return ScriptOutcome(failure=f"procaudit lab: {name}.ps1 is shipped but the lab does not model it yet")
        # Read per run, so a test can make a host hang in the middle of a deployment (the list is the endpoint's).
        if any(f.kind == "hang" for f in faults):
            run.cancelled.wait(_HANG_SECONDS)  # the script never returns until the client stops the pipeline
            return ScriptOutcome(failure="The pipeline has been stopped.")
        with host.lock:
            return handler(context, run)

    return execute
