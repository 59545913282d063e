"""Syntax gate and contract tests for every shipped remote script.

We cannot run PowerShell here, so each ``.ps1`` is parsed with tree-sitter-powershell (a syntax gate with a
small allowlist of the grammar's known false positives) and its ``param()`` block is compared with the Python
spec that binds its parameters.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell

from procaudit.catalog import ALL_SCRIPTS
from procaudit.content import content_path
from procaudit.lab.scripts import HANDLERS, _load_handlers

PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
SHIPPED = sorted([*content_path("checks").glob("*.ps1"), *content_path("deploy").glob("*.ps1")])
SPECS = {spec.name: spec for spec in ALL_SCRIPTS}

# Valid Windows PowerShell the grammar rejects (see ../shared/reference/psrp_testing.md §5), keyed by line text.
# Keep this empty by writing in the house style: quote property lists, never start a statement with ForEach-Object.
ALLOWED_PARSE_ERRORS: dict[str, set[str]] = {}

# Syntax that Windows PowerShell 5.1 does not have.
PS7_ONLY = [
    (re.compile(r"\?\?"), "null-coalescing ??"),
    (re.compile(r"\?\."), "null-conditional ?."),
    (re.compile(r"-AsArray\b"), "ConvertTo-Json -AsArray"),
    (re.compile(r"-EnumsAsStrings\b"), "ConvertTo-Json -EnumsAsStrings"),
    (re.compile(r"\s-Parallel\b"), "ForEach-Object -Parallel"),
    (re.compile(r"&&|\|\|"), "pipeline chain operators"),
]


def _errors(node: tree_sitter.Node, source: bytes) -> list[tuple[int, str]]:
    found = []
    if node.type == "ERROR" or node.is_missing:
        line = node.start_point[0]
        found.append((line + 1, source.splitlines()[line].decode().strip() if line < len(source.splitlines()) else ""))
    for child in node.children:
        found.extend(_errors(child, source))
    return found


def _param_names(root: tree_sitter.Node) -> list[str]:
    blocks = [c for c in root.children if c.type == "param_block"]
    assert len(blocks) == 1, "exactly one top-level param() block"
    names = []
    for node in blocks[0].children:
        if node.type == "parameter_list":
            for param in node.children:
                if param.type == "script_parameter":
                    variable = next(c for c in param.children if c.type == "variable")
                    names.append(variable.text.decode().lstrip("$"))
    return names


def _cmdletbinding(root: tree_sitter.Node) -> str:
    block = next(c for c in root.children if c.type == "param_block")
    attributes = [c for c in block.children if c.type == "attribute_list"]
    assert attributes, "param() needs [CmdletBinding()]"
    return attributes[0].text.decode()


def test_every_shipped_script_has_a_spec_and_a_lab_model() -> None:
    _load_handlers()
    assert SHIPPED, "no scripts found: content folders missing?"
    names = {p.stem for p in SHIPPED}
    assert names == set(SPECS), "shipped .ps1 files and procaudit.catalog.ALL_SCRIPTS must list the same scripts"
    assert names <= set(HANDLERS), f"scripts the lab does not model: {sorted(names - set(HANDLERS))}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_script_parses_as_powershell(path: Path) -> None:
    source = path.read_bytes()
    tree = PARSER.parse(source)
    allowed = ALLOWED_PARSE_ERRORS.get(path.name, set())
    errors = [(line, text) for line, text in _errors(tree.root_node, source) if text not in allowed]
    assert not errors, f"{path.name}: tree-sitter-powershell reports syntax errors at {errors}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_script_follows_the_contract(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    root = PARSER.parse(text.encode()).root_node
    assert text.lstrip().startswith("<#") and ".SYNOPSIS" in text, "comment-based help first"
    assert re.fullmatch(r"[A-Z][a-z]+-[A-Za-z0-9]+", path.stem), "Verb-Noun file name"
    assert "$ErrorActionPreference = 'Stop'" in text
    assert len(re.findall(r"ConvertTo-Json -Compress -Depth \d+", text)) == 1, "exactly one JSON document"
    assert not re.search(r"Write-(Host|Output)\b", text), "the output stream carries only the JSON document"
    for pattern, what in PS7_ONLY:
        assert not pattern.search(text), f"{what} does not exist in Windows PowerShell 5.1"
    spec = SPECS[path.stem]
    assert spec.folder == path.parent.name
    assert _param_names(root) == spec.param_names, "param() names must equal the Python spec, in order"
    binding = _cmdletbinding(root)
    if spec.mutating:
        assert "SupportsShouldProcess" in binding and "$PSCmdlet.ShouldProcess(" in text, (
            "mutating scripts honour -WhatIf"
        )
    else:
        assert "SupportsShouldProcess" not in binding


def test_the_gate_catches_real_syntax_errors() -> None:
    broken = b"[CmdletBinding()]\nparam(\n  [string]$A,\n  [int]$B =\n)\n"
    assert _errors(PARSER.parse(broken).root_node, broken)


NATIVE_CALL = re.compile(r"^\s*(?:\$\w+\s*=\s*)?@?\(?&\s", re.M)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_native_call_never_reads_a_stale_exit_code(path: Path) -> None:
    # A program that cannot start sets no exit code: $LASTEXITCODE still holds the previous program's. Every
    # `& program` must follow a reset of $global:LASTEXITCODE and sit in a try (the launch failure throws).
    text = path.read_text(encoding="utf-8")
    for call in NATIVE_CALL.finditer(text):
        before = text[: call.start()]
        reset = before.rfind("$global:LASTEXITCODE = $null")
        function = before.rfind("function ")
        assert reset > function, f"{path.name}: `&` at offset {call.start()} without a $LASTEXITCODE reset before it"
        assert "try {" in before[reset:], f"{path.name}: `&` at offset {call.start()} is not inside a try"
