"""Detection rules: the YAML schema administrators review, its validation, and its compilation to the IR.

One rule per file::

    id: Regsvr32RemoteScriptlet          # [A-Za-z0-9_.]+ , becomes the SCOM rule id suffix
    title: ...
    description: ...
    severity: high                        # critical | high | medium | low
    priority: high                        # SCOM alert priority low | normal | high (default from severity)
    enabled: true
    mitre: [T1218.010]
    references: [https://...]
    case_sensitive: false                 # default: Windows paths and switches are case-insensitive
    min_event_version: 1                  # optional; must equal what the fields used imply
    condition:                            # a tree of combinators and leaves
      all-of:
        - NewProcessName: {endswith: '\\regsvr32.exe'}
        - CommandLine: {contains: [scrobj.dll]}
        - any-of:
            - CommandLine: {regex: '[-/]i:'}
    exclusions:                           # known-good activity: the rule stays quiet when any of these holds
      - CommandLine: {contains: 'C:\\Program Files\\Vendor\\'}
    suppression: [host, NewProcessName]   # alert suppression keys: host or 4688 field names
    tests:                                # inline events
      - {name: ..., expect: alert, event: {NewProcessName: ..., CommandLine: ...}}
    samples:                              # files under shared/data/events and the exact hits expected
      - {file: security4688/x.evtx, hits: 2}

Leaves: ``<4688 field>: {<operator>: value | [values], case_sensitive: bool}`` with operators ``equals``,
``contains``, ``not-contains``, ``startswith``, ``endswith``, ``regex`` (SCOM's subset, see ``scom_regex``) and
``exists`` (true/false: the field is present and not empty). A list of values means "any of them" (for
``not-contains``: "none of them"). Combinators: ``all-of``, ``any-of``, ``none-of``, nestable.

Event versions: ParentProcessName, MandatoryLabel and Target* exist only in 4688 version 2 (Windows 10 /
Server 2016 and later); CommandLine from version 1. A condition on a field an event lacks never matches, so a
rule that needs ParentProcessName is blind on older hosts. ``min_event_version`` states it; the loader computes
it and refuses a file that states something else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from procaudit.detections import ir, scom_regex
from procaudit.errors import RuleFileError
from procaudit.events.model import FIELD_MIN_VERSION, FIELDS, MAX_EVENT_VERSION

OPERATORS = ("equals", "contains", "not-contains", "startswith", "endswith", "regex", "exists")
COMBINATORS = ("all-of", "any-of", "none-of")
SUPPRESSION_KEYS = ("host", *FIELDS)
RULE_ID = re.compile(r"^[A-Za-z0-9_.]+$")

Severity = Literal["critical", "high", "medium", "low"]
Priority = Literal["low", "normal", "high"]

DEFAULT_PRIORITY: dict[str, Priority] = {"critical": "high", "high": "high", "medium": "normal", "low": "low"}


# --- YAML with line numbers -----------------------------------------------------------------------------------


class _Map(dict[Any, Any]):
    line: int = 0
    key_lines: dict[Any, int]


class _List(list[Any]):
    line: int = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and list item, and refuses duplicate keys."""


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {result.key_lines[key]})", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_list(loader: _Loader, node: yaml.SequenceNode) -> _List:
    result = _List(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_list)


def _line_of(doc: Any, loc: Iterable[Any]) -> int | None:
    """Best line for a location path (pydantic ``loc``) in the loaded document."""
    line = getattr(doc, "line", None)
    node = doc
    for part in loc:
        if isinstance(node, _Map) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, _List) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


# --- schema ---------------------------------------------------------------------------------------------------


class RuleTest(BaseModel):
    """An inline test event and what the rule must do with it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    expect: Literal["alert", "quiet"]
    event: dict[str, str | int | None]

    @field_validator("event")
    @classmethod
    def _known_fields(cls, value: dict[str, str | int | None]) -> dict[str, str | int | None]:
        unknown = sorted(set(value) - set(FIELDS) - {"event_version"})
        if unknown:
            raise ValueError(f"unknown event field(s) {unknown}; use 4688 field names or event_version")
        return value


class SampleTest(BaseModel):
    """A sample file (relative to shared/data/events) and the exact number of alerts the rule gives on it."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(min_length=1)
    hits: int = Field(ge=0)
    record_ids: list[int] | None = None


class Rule(BaseModel):
    """One detection rule as written in YAML (conditions are checked separately, with their paths)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=180)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=3000)
    severity: Severity
    priority: Priority | None = None
    enabled: bool = True
    mitre: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    author: str | None = None
    case_sensitive: bool = False
    min_event_version: int | None = Field(default=None, ge=0, le=MAX_EVENT_VERSION)
    condition: dict[str, Any]
    exclusions: list[dict[str, Any]] = Field(default_factory=list)
    suppression: list[str] = Field(default_factory=lambda: ["host", "NewProcessName"])
    tests: list[RuleTest] = Field(default_factory=list)
    samples: list[SampleTest] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id_chars(cls, value: str) -> str:
        if not RULE_ID.fullmatch(value):
            raise ValueError("may only hold letters, digits, '_' and '.' (it becomes a SCOM id: no hyphens)")
        return value

    @field_validator("mitre")
    @classmethod
    def _mitre(cls, value: list[str]) -> list[str]:
        for technique in value:
            if not re.fullmatch(r"T\d{4}(\.\d{3})?", technique):
                raise ValueError(f"{technique!r} is not a MITRE ATT&CK technique id like T1218 or T1218.010")
        return value

    @field_validator("suppression")
    @classmethod
    def _suppression(cls, value: list[str]) -> list[str]:
        for key in value:
            if key not in SUPPRESSION_KEYS:
                raise ValueError(f"{key!r} is not a suppression key; use 'host' or a 4688 field name")
        if len(set(value)) != len(value):
            raise ValueError("suppression keys repeat")
        return value

    @property
    def alert_priority(self) -> Priority:
        """SCOM alert priority: as written, or derived from the severity."""
        return self.priority or DEFAULT_PRIORITY[self.severity]


# --- conditions -----------------------------------------------------------------------------------------------


class _ConditionError(Exception):
    def __init__(self, path: list[Any], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _values(raw: Any, path: list[Any], op: str) -> list[str]:
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise _ConditionError(path, f"'{op}' needs at least one value")
    out = []
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _ConditionError([*path, i] if isinstance(raw, list) else path, f"'{op}' takes text values")
        text = str(value)
        if op != "equals" and not text:
            raise _ConditionError(path, f"'{op}' with an empty value matches everything; remove it")
        out.append(text)
    return out


def _escape(text: str, path: list[Any]) -> str:
    try:
        return scom_regex.escape_literal(text)
    except ValueError as exc:
        raise _ConditionError(path, f"{exc} (in {text!r}; in YAML double quotes, write backslashes as \\\\)") from exc


def _alternation(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "(" + "|".join(parts) + ")"


def _leaf(field_name: str, spec: Any, path: list[Any], rule_case_sensitive: bool) -> ir.Node:
    if field_name not in FIELDS:
        raise _ConditionError(
            path, f"unknown field {field_name!r}; use all-of / any-of / none-of or a 4688 field: {', '.join(FIELDS)}"
        )
    if not isinstance(spec, dict):
        raise _ConditionError(path, "expected {<operator>: value}, e.g. {contains: 'x'}")
    unknown = sorted(set(spec) - set(OPERATORS) - {"case_sensitive"})
    if unknown:
        raise _ConditionError(path, f"unknown operator {unknown[0]!r}; operators are: {', '.join(OPERATORS)}")
    ops = [key for key in spec if key in OPERATORS]
    if len(ops) != 1:
        raise _ConditionError(path, "a leaf takes exactly one operator; combine leaves with all-of / any-of")
    op = ops[0]
    case_sensitive = spec.get("case_sensitive", rule_case_sensitive)
    if not isinstance(case_sensitive, bool):
        raise _ConditionError([*path, "case_sensitive"], "case_sensitive is true or false")
    ignore_case = not case_sensitive
    op_path = [*path, op]
    raw = spec[op]
    if op == "exists":
        if not isinstance(raw, bool):
            raise _ConditionError(op_path, "exists is true or false")
        present = ir.Match(field_name, "(.|\\n)", ignore_case=False)
        return present if raw else ir.Not(present)
    values = _values(raw, op_path, op)
    if op == "regex":
        nodes: list[ir.Node] = []
        for i, value in enumerate(values):
            try:
                pattern = scom_regex.canonical(value)
            except scom_regex.RegexSubsetError as exc:
                where = [*op_path, i] if isinstance(raw, list) else op_path
                raise _ConditionError(where, f"regex outside SCOM's supported subset: {exc}") from exc
            nodes.append(ir.Match(field_name, pattern, ignore_case))
        return nodes[0] if len(nodes) == 1 else ir.AnyOf(tuple(nodes))
    escaped = [_escape(value, op_path) for value in values]
    body = _alternation(escaped)
    if op in ("contains", "not-contains"):
        pattern = "|".join(escaped)
    elif op == "startswith":
        pattern = "^" + body
    elif op == "endswith":
        pattern = body + "$"
    else:
        pattern = "^" + body + "$"
    match = ir.Match(field_name, pattern, ignore_case)
    return ir.Not(match) if op == "not-contains" else match


def parse_condition(node: Any, path: list[Any], case_sensitive: bool) -> ir.Node:
    """Parse one condition node (combinator or leaf) into the IR."""
    if not isinstance(node, dict) or len(node) != 1:
        raise _ConditionError(
            path, "expected one key: all-of / any-of / none-of, or a 4688 field name such as CommandLine"
        )
    ((key, value),) = node.items()
    child_path = [*path, key]
    if key in COMBINATORS:
        if not isinstance(value, list) or not value:
            raise _ConditionError(child_path, f"'{key}' takes a non-empty list of conditions")
        children = tuple(parse_condition(item, [*child_path, i], case_sensitive) for i, item in enumerate(value))
        if key == "all-of":
            return children[0] if len(children) == 1 else ir.All(children)
        either = children[0] if len(children) == 1 else ir.AnyOf(children)
        return either if key == "any-of" else ir.Not(either)
    return _leaf(str(key), value, child_path, case_sensitive)


# --- compiled rule --------------------------------------------------------------------------------------------


@dataclass
class CompiledRule:
    """A validated rule with its IR, its Python predicate and what the version analysis found."""

    rule: Rule
    source: Path | None
    condition: ir.Node
    exclusions: tuple[ir.Node, ...]
    node: ir.Node
    predicate: ir.Predicate
    min_event_version: int
    blind_versions: list[int] = field(default_factory=list)
    degraded_versions: list[int] = field(default_factory=list)
    needs_command_line: bool = False
    clauses: ir.Clauses = ()

    @property
    def id(self) -> str:
        """The rule id."""
        return self.rule.id


def compile_rule(doc: Any, source: Path | None = None) -> CompiledRule:
    """Validate one loaded YAML document and compile it.

    Raises:
        RuleFileError: naming the file, the rule id, the field and the YAML line of the first problem.
    """
    where = str(source) if source else "<rule>"
    rule_id = doc.get("id") if isinstance(doc, dict) else None
    label = f"rule {rule_id!r}" if isinstance(rule_id, str) else "rule"
    if not isinstance(doc, dict):
        raise RuleFileError(f"{where}: expected one rule (a YAML mapping with id, title, condition, ...)")
    try:
        rule = Rule.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = list(first["loc"])
        line = _line_of(doc, loc)
        dotted = ".".join(str(p) for p in loc) or "(rule)"
        raise RuleFileError(f"{where}:{line or '?'}: {label}: {dotted}: {first['msg']}") from exc
    try:
        condition = parse_condition(doc["condition"], ["condition"], rule.case_sensitive)
        exclusions = (
            tuple(
                parse_condition(item, ["exclusions", i], rule.case_sensitive)
                for i, item in enumerate(doc["exclusions"])
            )
            if "exclusions" in doc
            else ()
        )
    except _ConditionError as exc:
        line = _line_of(doc, exc.path)
        dotted = ".".join(str(p) for p in exc.path)
        raise RuleFileError(f"{where}:{line or '?'}: rule {rule.id!r}: {dotted}: {exc.message}") from exc
    node: ir.Node = condition
    if exclusions:
        excluded = exclusions[0] if len(exclusions) == 1 else ir.AnyOf(exclusions)
        node = ir.All((condition, ir.Not(excluded)))
    blind = [v for v in range(MAX_EVENT_VERSION) if ir.never_matches(node, ir.fields_newer_than(v))]
    if ir.never_matches(node, ir.fields_newer_than(MAX_EVENT_VERSION)):
        raise RuleFileError(f"{where}: rule {rule.id!r}: the condition can never match any event")
    degraded = [
        v
        for v in range(MAX_EVENT_VERSION)
        if v not in blind and ir.without_fields(condition, ir.fields_newer_than(v)) != condition
    ]
    implied = max(blind, default=-1) + 1
    if rule.min_event_version is not None and rule.min_event_version != implied:
        line = _line_of(doc, ["min_event_version"])
        used = sorted(f for f in ir.fields_used(condition) if FIELD_MIN_VERSION[f] > 0)
        raise RuleFileError(
            f"{where}:{line or '?'}: rule {rule.id!r}: min_event_version: "
            f"the fields used ({', '.join(used) or 'none'}) imply {implied}, not {rule.min_event_version}"
        )
    return CompiledRule(
        rule=rule,
        source=source,
        condition=condition,
        exclusions=exclusions,
        node=node,
        predicate=ir.compile_node(node),
        min_event_version=implied,
        blind_versions=blind,
        degraded_versions=degraded,
        needs_command_line=ir.never_matches(node, frozenset({"CommandLine"})),
        clauses=ir.required_clauses(node),
    )


def load_rule_file(path: Path) -> CompiledRule:
    """Load and compile one rule file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"{path}: cannot read the rule file ({exc})") from exc
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RuleFileError(f"{path}{line}: not valid YAML ({problem})") from exc
    return compile_rule(doc, path)


def rule_files(directory: Path) -> list[Path]:
    """The rule files of a directory (``*.yaml`` / ``*.yml``), sorted."""
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_rules(directory: Path) -> list[CompiledRule]:
    """Load every rule of a directory; ids must be unique.

    Raises:
        RuleFileError: a missing directory, an invalid rule, or an id used twice.
    """
    if not directory.is_dir():
        raise RuleFileError(f"{directory}: no such rules directory")
    rules: list[CompiledRule] = []
    seen: dict[str, Path | None] = {}
    for path in rule_files(directory):
        compiled = load_rule_file(path)
        if compiled.id in seen:
            raise RuleFileError(f"{path}: rule id {compiled.id!r} is already used by {seen[compiled.id]}")
        seen[compiled.id] = path
        rules.append(compiled)
    if not rules:
        raise RuleFileError(f"{directory}: no rule files (*.yaml) found")
    return rules
