"""Compile detection rules into an unsealed SCOM management pack and validate it.

Each rule becomes one ``Rule`` on the local Security log: data source ``Windows!Microsoft.Windows.EventProvider``
whose ``Expression`` is ``EventDisplayNumber = 4688`` AND the rule's IR (see ``ir``), written with SCOM's
expression grammar (``And`` / ``Or`` / ``Not`` / ``RegExExpression`` with ``MatchesRegularExpression`` on
``Params/Param[N]``). The filter sits in the data source, as in the real 4688 rules we know of, so events are
dropped before they flow further; the grammar is the one ``System.ExpressionFilter`` evaluates. The write action
is ``Health!System.Health.GenerateAlert`` with the alert parameters below and suppression on the rule's keys.

The XML comes from the Jinja2 template ``detections/mp.xml.j2`` (autoescape, StrictUndefined) fed the view
models here. Every build is validated against the MP XSD (lxml) and by semantic checks the XSD cannot make.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import jinja2
from lxml import etree
from pydantic import BaseModel, Field

from procaudit.content import content_path
from procaudit.detections import ir, scom_regex
from procaudit.detections.rules import RULE_ID, CompiledRule
from procaudit.errors import ManagementPackError, UserInputError
from procaudit.events.model import PARAM_INDEX, VERSION_HOSTS

DEFAULT_MP_ID = "Procaudit.ProcessCreation.Detections"
DEFAULT_VERSION = "1.0.0.0"
TEMPLATE = "mp.xml.j2"
SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
#: ``Microsoft.Windows.OperatingSystem`` is the base class of the server and client OS classes, so the rules run
#: on servers and workstations alike; the OS is hosted by the computer, hence the ``Host/`` path.
TARGET = "Windows!Microsoft.Windows.OperatingSystem"
COMPUTER_NAME = '$Target/Host/Property[Type="Windows!Microsoft.Windows.Computer"]/NetworkName$'

# Alert parameters: {0} computer, {1} DOMAIN\user (creator), {2} new process, {3} creator process (empty before
# event version 2), {4} command line.
ALERT_PARAMETERS = (
    "$Data/LoggingComputer$",
    "$Data/Params/Param[3]$\\$Data/Params/Param[2]$",
    "$Data/Params/Param[6]$",
    "$Data/Params/Param[14]$",
    "$Data/Params/Param[9]$",
)

_SEVERITY = {"critical": 2, "high": 2, "medium": 1, "low": 0}
_PRIORITY = {"low": 0, "normal": 1, "high": 2}
_VERSION_RE = re.compile(r"^[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}$")


class Reference(BaseModel):
    """A management pack the MP depends on."""

    alias: str
    id: str
    version: str
    public_key_token: str = "31bf3856ad364e35"


#: Lowest common versions, so the MP imports on SCOM 2012 R2 to 2022 (a reference version is a minimum).
REFERENCES = (
    Reference(alias="System", id="System.Library", version="7.5.8501.0"),
    Reference(alias="Windows", id="Microsoft.Windows.Library", version="7.5.8501.0"),
    Reference(alias="Health", id="System.Health.Library", version="7.0.8433.0"),
)


class ExprView(BaseModel):
    """One node of a SCOM expression: match / and / or / not."""

    kind: str
    param: int = 0
    pattern: str = ""
    children: list[ExprView] = Field(default_factory=list)


class RuleView(BaseModel):
    """What the template needs for one rule."""

    rule_id: str
    element_id: str
    message_id: str
    enabled: str
    filters: list[ExprView]
    alert_priority: int
    alert_severity: int
    suppression: list[str]
    mitre: str
    display_name: str
    description: str
    alert_name: str
    alert_description: str


class MpView(BaseModel):
    """What the template needs for the whole management pack."""

    id: str
    version: str
    display_name: str
    description: str
    target: str = TARGET
    computer_name: str = COMPUTER_NAME
    references: list[Reference]
    alert_parameters: list[str]
    rules: list[RuleView]


class RuleSummary(BaseModel):
    """Per-rule facts ``mp build`` reports."""

    rule_id: str
    element_id: str
    enabled: bool
    min_event_version: int
    blind_on: list[str]
    degraded_on: list[str]
    needs_command_line: bool


class BuildResult(BaseModel):
    """A built and validated management pack."""

    mp_id: str
    version: str
    xml: str
    rules: list[RuleSummary]


# --- view models ----------------------------------------------------------------------------------------------


def expression_view(node: ir.Node) -> ExprView:
    """The SCOM expression for an IR node."""
    if isinstance(node, ir.Match):
        return ExprView(kind="match", param=PARAM_INDEX[node.field], pattern=node.scom_pattern)
    if isinstance(node, ir.Not):
        return ExprView(kind="not", children=[expression_view(node.child)])
    if not node.children:
        raise ManagementPackError("an empty And/Or cannot be written to SCOM")
    if len(node.children) == 1:
        return expression_view(node.children[0])
    kind = "and" if isinstance(node, ir.All) else "or"
    return ExprView(kind=kind, children=[expression_view(child) for child in node.children])


def _filters(node: ir.Node) -> list[ExprView]:
    """The rule's conditions as children of the top-level And (next to EventDisplayNumber = 4688)."""
    parts = node.children if isinstance(node, ir.All) else (node,)
    return [expression_view(part) for part in parts]


def _format_text(text: str) -> str:
    """Rule text inside a SCOM alert description is a .NET format string: double literal braces."""
    return text.replace("{", "{{").replace("}", "}}")


def _suppression_value(key: str) -> str:
    return "$Data/LoggingComputer$" if key == "host" else f"$Data/Params/Param[{PARAM_INDEX[key]}]$"


def rule_view(mp_id: str, compiled: CompiledRule) -> RuleView:
    """View model of one rule."""
    rule = compiled.rule
    element_id = f"{mp_id}.Rule.{rule.id}"
    mitre = ", ".join(rule.mitre)
    attribution = f"\nRule author: {rule.author}" if rule.author else ""
    alert_description = (
        "Computer: {0}\nUser: {1}\nProcess: {2}\nCreator process: {3}\nCommand line: {4}\n\n"
        + _format_text(rule.description)
        + (f"\nMITRE ATT&CK: {mitre}" if mitre else "")
        + _format_text(attribution)
        + f"\nprocaudit rule: {rule.id}"
    )
    return RuleView(
        rule_id=rule.id,
        element_id=element_id,
        message_id=f"{element_id}.AlertMessage",
        enabled="true" if rule.enabled else "false",
        filters=_filters(compiled.node),
        alert_priority=_PRIORITY[rule.alert_priority],
        alert_severity=_SEVERITY[rule.severity],
        suppression=[_suppression_value(key) for key in rule.suppression],
        mitre=mitre,
        display_name=rule.title,
        description=rule.description + (f" MITRE ATT&CK: {mitre}." if mitre else "") + attribution,
        alert_name=rule.title,
        alert_description=alert_description,
    )


def mp_view(rules: Sequence[CompiledRule], mp_id: str, version: str, display_name: str | None = None) -> MpView:
    """View model of the whole MP."""
    return MpView(
        id=mp_id,
        version=version,
        display_name=display_name or f"{mp_id} (procaudit process-creation detections)",
        description=(
            "Alert rules on Security event 4688 (process creation with command line), generated by procaudit "
            f"from {len(rules)} reviewed detection rules. Unsealed: edit the rules and rebuild rather than "
            "editing this pack."
        ),
        references=list(REFERENCES),
        alert_parameters=list(ALERT_PARAMETERS),
        rules=[rule_view(mp_id, rule) for rule in rules],
    )


# --- rendering ------------------------------------------------------------------------------------------------


@cache
def _environment(template_dir: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render(view: MpView, template_dir: Path | None = None) -> str:
    """Render the MP XML from its view model."""
    directory = template_dir or content_path("detections")
    try:
        template = _environment(directory).get_template(TEMPLATE)
    except jinja2.TemplateNotFound as exc:
        raise ManagementPackError(f"the MP template {directory / TEMPLATE} is missing; reinstall procaudit") from exc
    return template.render(mp=view)


# --- validation -----------------------------------------------------------------------------------------------


@cache
def schema() -> etree.XMLSchema:
    """The SCOM MP schema (v2.0), with procaudit's MAML stand-in."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "ManagementPackSchema.v2.0.xsd")))


def xsd_errors(xml: str) -> list[str]:
    """XSD validation messages (empty when the document is valid)."""
    try:
        document = etree.fromstring(xml.encode("utf-8"))
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    validator = schema()
    if validator.validate(document):
        return []
    return [f"line {error.line}: {error.message}" for error in validator.error_log]


_ALIAS_USE = re.compile(r'(?:TypeID|Target)="([A-Za-z0-9_.]+)!|Type="([A-Za-z0-9_.]+)!')
_MPELEMENT = re.compile(r'\$MPElement\[Name="([^"]+)"\]\$')
_PARAM = re.compile(r"Param\[(\d+)\]")


def semantic_errors(xml: str) -> list[str]:
    """Checks the XSD cannot make: ids, references, string resources, regex dialect, GenerateAlert shape."""
    problems: list[str] = []
    root = etree.fromstring(xml.encode("utf-8"))
    ids: dict[str, int] = {}
    for element in root.iter():
        value = element.get("ID")
        # Module ids (DataSource, WriteAction...) are scoped to their workflow; the language id is not an MP id.
        if value is None or element.tag in ("LanguagePack", "DataSource", "ConditionDetection", "WriteAction"):
            continue
        if not RULE_ID.fullmatch(value) or len(value) > 256:
            problems.append(f"id {value!r} is not [A-Za-z0-9_.]{{1,256}}")
        ids[value] = ids.get(value, 0) + 1
    problems += [f"id {value!r} is used {count} times" for value, count in ids.items() if count > 1]
    references = {ref.get("Alias"): ref.findtext("ID") for ref in root.iterfind("Manifest/References/Reference")}
    declared = set(references)
    used: set[str] = set()
    for match in _ALIAS_USE.finditer(xml):
        used.add(match.group(1) or match.group(2))
    problems += [f"alias {alias!r} is used but not declared in Manifest/References" for alias in used - declared]
    # System.Library is in every management group (every other library depends on it), so declaring it adds
    # no import dependency; any other unused reference would.
    problems += [
        f"reference {alias!r} is declared but not used (it would still be a dependency)"
        for alias in declared - used
        if references[alias] != "System.Library"
    ]
    resources = {element.get("ID") for element in root.iterfind("Presentation/StringResources/StringResource")}
    display = {
        element.get("ElementID") for element in root.iterfind("LanguagePacks/LanguagePack/DisplayStrings/DisplayString")
    }
    for name in _MPELEMENT.findall(xml):
        if name not in resources:
            problems.append(f"$MPElement[Name={name!r}]$ has no StringResource")
        if name not in display:
            problems.append(f"string resource {name!r} has no DisplayString")
    for rule in root.iterfind("Monitoring/Rules/Rule"):
        if rule.get("ID") not in display:
            problems.append(f"rule {rule.get('ID')!r} has no DisplayString")
        action = rule.find("WriteActions/WriteAction")
        if action is not None:
            order = [child.tag for child in action]
            expected = [
                "Priority",
                "Severity",
                "AlertMessageId",
                "AlertParameters",
                "Suppression",
                "Custom1",
                "Custom2",
            ]
            if [tag for tag in expected if tag in order] != order:
                problems.append(f"rule {rule.get('ID')!r}: GenerateAlert children out of order: {order}")
    for pattern_element in root.iter("Pattern"):
        pattern = pattern_element.text or ""
        body = pattern.removeprefix("(?i)")
        try:
            scom_regex.parse(body)
        except scom_regex.RegexSubsetError as exc:
            problems.append(f"pattern outside SCOM's regex subset: {exc}")
    for number in _PARAM.findall(xml):
        if not 1 <= int(number) <= len(PARAM_INDEX):
            problems.append(f"Params/Param[{number}] does not exist in event 4688")
    return problems


# --- build ----------------------------------------------------------------------------------------------------


def _hosts(versions: list[int]) -> list[str]:
    return [f"v{v}: {VERSION_HOSTS[v]}" for v in versions]


def build(
    rules: Sequence[CompiledRule],
    *,
    mp_id: str = DEFAULT_MP_ID,
    version: str = DEFAULT_VERSION,
    display_name: str | None = None,
    template_dir: Path | None = None,
) -> BuildResult:
    """Compile, render and validate a management pack.

    Raises:
        UserInputError: a bad MP id or version.
        ManagementPackError: the generated XML fails the XSD or the semantic checks.
    """
    if not RULE_ID.fullmatch(mp_id) or len(mp_id) > 200:
        raise UserInputError(f"management pack id {mp_id!r}: use letters, digits, '_' and '.' only (no hyphens)")
    if not _VERSION_RE.fullmatch(version):
        raise UserInputError(f"management pack version {version!r}: use four numbers, e.g. 1.0.0.3")
    if not rules:
        raise UserInputError("no rules to build")
    xml = render(mp_view(rules, mp_id, version, display_name), template_dir)
    problems = xsd_errors(xml)
    if not problems:
        problems = semantic_errors(xml)
    if problems:
        raise ManagementPackError("the generated management pack is invalid:\n  " + "\n  ".join(problems[:20]))
    summaries = [
        RuleSummary(
            rule_id=rule.id,
            element_id=f"{mp_id}.Rule.{rule.id}",
            enabled=rule.rule.enabled,
            min_event_version=rule.min_event_version,
            blind_on=_hosts(rule.blind_versions),
            degraded_on=_hosts(rule.degraded_versions),
            needs_command_line=rule.needs_command_line,
        )
        for rule in rules
    ]
    return BuildResult(mp_id=mp_id, version=version, xml=xml, rules=summaries)
