"""The lab's implementations of the shipped scripts' contracts.

A script is recognised only by its exact text: the lab loads every shipped ``.ps1`` from ``checks/`` and
``deploy/`` and refuses any other text, which proves that nothing was interpolated into a script on the
way. Each handler receives the modelled host and the PSRP-bound parameters and returns what the real
script would write: one JSON document in Windows PowerShell 5.1's ``ConvertTo-Json -Compress`` style.
"""

from __future__ import annotations

import json
import re
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


# What [CmdletBinding()] adds to every advanced script, and what SupportsShouldProcess adds on top.
_COMMON_PARAMETERS = frozenset(
    {
        "verbose",
        "debug",
        "erroraction",
        "warningaction",
        "informationaction",
        "errorvariable",
        "warningvariable",
        "informationvariable",
        "outvariable",
        "outbuffer",
        "pipelinevariable",
    }
)
_SHOULD_PROCESS_PARAMETERS = frozenset({"whatif", "confirm"})
# Comments and strings, in one pass so that neither hides inside the other; both are blanked before parsing.
_NOISE = re.compile(r"<#.*?#>|#[^\n]*|'(?:[^']|'')*'|\"(?:[^\"`]|`.)*\"", re.S)
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@cache
def declared_parameters(text: str) -> frozenset[str]:
    """The parameter names (lower case) a script's ``param()`` block declares, common parameters included."""
    code = _NOISE.sub(lambda m: "''" if m.group(0)[0] in "'\"" else " ", text)
    start = re.search(r"\bparam\s*\(", code, flags=re.I)
    if start is None:
        return frozenset()
    names: set[str] = set()
    depth, brackets, declaration = 1, 0, ""
    for char in code[start.end() :]:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                break
        elif char == "[":
            brackets += 1
        elif char == "]":
            brackets -= 1
        if depth == 1 and brackets == 0 and char == ",":
            names.update(_first_variable(declaration))
            declaration = ""
        elif brackets == 0 and depth == 1:
            declaration += char
    names.update(_first_variable(declaration))
    binding = re.search(r"\[CmdletBinding\s*\(([^)]*)\)\s*\]", code, flags=re.I)
    if binding is not None:
        names |= _COMMON_PARAMETERS
        if re.search(r"SupportsShouldProcess", binding.group(1), flags=re.I):
            names |= _SHOULD_PROCESS_PARAMETERS
    return frozenset(names)


def _first_variable(declaration: str) -> list[str]:
    """The parameter a declaration names: its first variable outside attributes (``[int]$Days = 7`` -> days)."""
    match = _VARIABLE.search(declaration)
    return [match.group(1).lower()] if match else []


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
        declared = declared_parameters(run.script)
        unknown = [parameter for parameter in run.parameters if parameter.lower() not in declared]
        if unknown:  # PowerShell's binder refuses it before the script runs (ParameterBindingException)
            return ScriptOutcome(
                failure=f"procaudit lab: {name}.ps1: A parameter cannot be found that matches parameter name "
                f"'{unknown[0]}'."
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
