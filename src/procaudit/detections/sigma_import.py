"""Convert Sigma ``process_creation`` rules (read with pySigma) into procaudit rule YAML.

pySigma's Windows pipeline package requires pySigma < 2.0, so the 4688 field mapping is done here:
Image -> NewProcessName, ParentImage -> ParentProcessName, CommandLine -> CommandLine, User -> SubjectUserName
(value without a domain part only; 4688 splits DOMAIN and user), IntegrityLevel -> MandatoryLabel (the level name
becomes its SID, equality only).

What cannot be expressed is reported per rule, never silently dropped:

- fields 4688 does not have (OriginalFileName, Hashes, ParentCommandLine, CurrentDirectory, Product, ...): the
  rule may only get narrower, never broader, so the polarity under NOT decides (see ``_convert``): a branch of an
  OR is dropped (reported), and so is a part of an AND under NOT (``not (a and b)``); a part of an AND, or a
  branch of an OR under NOT (``not 1 of filter*``, ``not (a or b)``), makes the rule not converted;
- modifiers other than contains / startswith / endswith / all / windash / re / cased (e.g. base64offset,
  base64, wide, cidr, expand, fieldref, gt/lt): the rule is not converted;
- regular expressions outside SCOM's subset, regex flags other than i, keyword (field-less) searches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from procaudit.detections import scom_regex
from procaudit.detections.rules import compile_rule
from procaudit.errors import RuleFileError, UserInputError
from procaudit.events.model import INTEGRITY_LEVEL_SIDS
from procaudit.fsutil import atomic_write

FIELD_MAP = {"Image": "NewProcessName", "ParentImage": "ParentProcessName", "CommandLine": "CommandLine"}
SUPPORTED_MODIFIERS = {
    "SigmaContainsModifier",
    "SigmaStartswithModifier",
    "SigmaEndswithModifier",
    "SigmaAllModifier",
    "SigmaWindowsDashModifier",
    "SigmaRegularExpressionModifier",
    "SigmaRegularExpressionIgnoreCaseFlagModifier",
    "SigmaCasedModifier",
}
_LEVELS = {"critical": "critical", "high": "high", "medium": "medium", "low": "low", "informational": "low"}


class ConversionReport(BaseModel):
    """What happened to one Sigma rule."""

    source: str
    sigma_id: str | None
    title: str | None
    rule_id: str | None = None
    output: str | None = None
    converted: bool = False
    unsupported: list[str] = Field(default_factory=list)
    dropped: list[str] = Field(default_factory=list)


class _Unsupported(Exception):
    pass


def _modifier_names(detection: Any) -> set[str]:
    names: set[str] = set()
    for item in getattr(detection, "detection_items", []):
        if hasattr(item, "detection_items"):
            names |= _modifier_names(item)
        else:
            names |= {m.__name__ for m in getattr(item, "modifiers", [])}
    return names


def _sigma_string_leaf(field: str, value: Any, cased: bool) -> dict[str, Any]:
    from sigma.types import SpecialChars

    parts = list(value.s)
    multi, single = SpecialChars.WILDCARD_MULTI, SpecialChars.WILDCARD_SINGLE
    text_parts = [p for p in parts if isinstance(p, str)]
    spec: dict[str, Any]
    if not any(p in (multi, single) for p in parts):
        spec = {"equals": "".join(text_parts)}
    elif single not in parts and len(text_parts) == 1:
        inner = text_parts[0]
        starts, ends = parts[0] == multi, parts[-1] == multi
        if starts and ends and len(parts) == 3:
            spec = {"contains": inner}
        elif starts and len(parts) == 2:
            spec = {"endswith": inner}
        elif ends and len(parts) == 2:
            spec = {"startswith": inner}
        else:
            spec = {"regex": _wildcard_regex(parts)}
    else:
        spec = {"regex": _wildcard_regex(parts)}
    if cased:
        spec["case_sensitive"] = True
    return {field: spec}


def _wildcard_regex(parts: list[Any]) -> str:
    from sigma.types import SpecialChars

    out = []
    for part in parts:
        if part == SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif part == SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        else:
            out.append(scom_regex.escape_literal(str(part)))
    return "^" + "".join(out) + "$"


def _leaf(sigma_field: str, value: Any) -> dict[str, Any]:
    from sigma.types import (
        SigmaCasedString,
        SigmaExpansion,
        SigmaNull,
        SigmaNumber,
        SigmaRegularExpression,
        SigmaString,
    )

    if sigma_field == "IntegrityLevel":
        text = str(value).strip().lower()
        if not isinstance(value, SigmaString) or text not in INTEGRITY_LEVEL_SIDS:
            raise _Unsupported(f"IntegrityLevel value {value!s} (only exact level names map to a MandatoryLabel SID)")
        return {"MandatoryLabel": {"equals": INTEGRITY_LEVEL_SIDS[text]}}
    if sigma_field == "User":
        if isinstance(value, SigmaString) and "\\" in str(value):
            raise _Unsupported("User with a DOMAIN\\name value (4688 keeps domain and name apart)")
        field = "SubjectUserName"
    elif sigma_field in FIELD_MAP:
        field = FIELD_MAP[sigma_field]
    else:
        raise _Unsupported(f"field {sigma_field} (not in event 4688)")
    if isinstance(value, SigmaExpansion):
        return {"any-of": [_leaf(sigma_field, v) for v in value.values]}
    if isinstance(value, SigmaNull):
        return {field: {"exists": False}}
    if isinstance(value, SigmaRegularExpression):
        flags = {getattr(f, "name", str(f)) for f in (value.flags or set())}
        if flags - {"IGNORECASE"}:
            raise _Unsupported(f"regex flags {sorted(flags)}")
        pattern = str(value.regexp)
        try:
            scom_regex.canonical(pattern)
        except scom_regex.RegexSubsetError as exc:
            raise _Unsupported(f"regex {pattern!r} outside SCOM's subset ({exc.message})") from exc
        # Sigma regexes are case-sensitive unless |i; ours follow the rule's case setting.
        return {field: {"regex": pattern, "case_sensitive": "IGNORECASE" not in flags}}
    if isinstance(value, SigmaNumber):
        return {field: {"equals": str(value)}}
    if isinstance(value, SigmaString):
        return _sigma_string_leaf(field, value, isinstance(value, SigmaCasedString))
    raise _Unsupported(f"{type(value).__name__} value on {sigma_field}")


def _convert(node: Any, dropped: list[str], negated: bool = False) -> dict[str, Any]:
    """Convert a condition subtree; what 4688 cannot express may only make the rule narrower, never broader.

    ``negated`` is the subtree's polarity (an odd number of NOTs above it). A part that cannot be expressed stands
    for "never" where the polarity is positive and for "always" where it is negated: both narrow the rule. So in a
    positive OR (or a negated AND) such a branch is dropped and reported; in a positive AND (or a negated OR) it
    makes the whole subtree unexpressible (``_Unsupported``), which the enclosing node handles the same way, up to
    the rule, which is then not converted. ``not 1 of filter*`` with one filter on OriginalFileName therefore
    refuses the rule: dropping that filter would make the rule alert on what the filter excludes.
    """
    from sigma.conditions import (
        ConditionAND,
        ConditionFieldEqualsValueExpression,
        ConditionNOT,
        ConditionOR,
        ConditionValueExpression,
    )

    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _leaf(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        raise _Unsupported("keyword (field-less) search")
    if isinstance(node, ConditionNOT):
        (arg,) = node.args
        return {"none-of": [_convert(arg, dropped, not negated)]}
    if isinstance(node, ConditionAND | ConditionOR):
        combinator = "all-of" if isinstance(node, ConditionAND) else "any-of"
        # A positive OR and a negated AND may lose a branch (narrower); the other two may not.
        droppable = isinstance(node, ConditionOR) != negated
        kept = []
        lost: list[str] = []
        for arg in node.args:
            try:
                kept.append(_convert(arg, dropped, negated))
            except _Unsupported as exc:
                if not droppable:
                    raise
                lost.append(str(exc))
        if not kept:
            raise _Unsupported("; ".join(lost))
        where = "OR branch" if combinator == "any-of" else "AND part of an exclusion (NOT)"
        dropped.extend(f"{where} dropped: {reason}" for reason in lost)
        return kept[0] if len(kept) == 1 else {combinator: kept}
    raise _Unsupported(f"condition element {type(node).__name__}")


def _rule_id(title: str, sigma_id: str | None) -> str:
    words = re.findall(r"[A-Za-z0-9]+", title)
    name = "".join(w[:1].upper() + w[1:] for w in words)[:80] or "Rule"
    suffix = (sigma_id or "").replace("-", "")[:8]
    return f"Sigma_{name}" + (f"_{suffix}" if suffix else "")


def convert_rule(sigma_rule: Any, source: str) -> tuple[ConversionReport, dict[str, Any] | None]:
    """Convert one pySigma rule; returns the report and the YAML document (``None`` when not converted)."""
    sigma_id = str(sigma_rule.id) if sigma_rule.id else None
    report = ConversionReport(source=source, sigma_id=sigma_id, title=sigma_rule.title)
    logsource = sigma_rule.logsource
    if logsource.category != "process_creation" or (logsource.product or "windows") != "windows":
        report.unsupported.append(
            f"logsource category={logsource.category} product={logsource.product} (only process_creation/windows)"
        )
        return report, None
    for name in sorted(_modifier_names_of(sigma_rule) - SUPPORTED_MODIFIERS):
        modifier = name.removeprefix("Sigma").removesuffix("Modifier").lower()
        report.unsupported.append(f"modifier |{modifier}")
    conditions = sigma_rule.detection.parsed_condition
    if len(conditions) != 1:
        report.unsupported.append("more than one condition")
        return report, None
    try:
        tree = _convert(conditions[0].parse(), report.dropped)
    except _Unsupported as exc:
        report.unsupported.append(str(exc))
    if report.unsupported:
        return report, None
    mitre = sorted(
        {
            tag.name.upper()
            for tag in sigma_rule.tags
            if tag.namespace == "attack" and re.fullmatch(r"t\d{4}(\.\d{3})?", tag.name)
        }
    )
    rule_id = _rule_id(sigma_rule.title or "", sigma_id)
    note = f" Converted from Sigma rule {sigma_id}." if sigma_id else " Converted from a Sigma rule."
    if report.dropped:
        note += " Not converted (4688 lacks it): " + "; ".join(report.dropped) + "."
    doc: dict[str, Any] = {
        "id": rule_id,
        "title": (sigma_rule.title or rule_id)[:200],
        "description": ((sigma_rule.description or sigma_rule.title or "").strip() + note).strip()[:3000],
        "severity": _LEVELS.get(str(sigma_rule.level.name).lower() if sigma_rule.level else "medium", "medium"),
        "enabled": False,
        "mitre": mitre,
        "references": [str(r) for r in sigma_rule.references],
        "author": sigma_rule.author,
        "condition": tree,
        "suppression": ["host", "CommandLine"],
    }
    if doc["author"] is None:
        del doc["author"]
    report.rule_id = rule_id
    return report, doc


def _modifier_names_of(sigma_rule: Any) -> set[str]:
    names: set[str] = set()
    for detection in sigma_rule.detection.detections.values():
        names |= _modifier_names(detection)
    return names


def import_sigma(paths: Sequence[Path], output: Path) -> list[ConversionReport]:
    """Convert every rule of the Sigma files into ``output`` (one YAML file per rule, written disabled).

    Raises:
        UserInputError: a file cannot be read or is not Sigma YAML.
    """
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError

    reports: list[ConversionReport] = []
    output.mkdir(parents=True, exist_ok=True)
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
            collection = SigmaCollection.from_yaml(text, collect_errors=True)
        except (OSError, UnicodeDecodeError, yaml.YAMLError, SigmaError) as exc:
            raise UserInputError(f"{path}: cannot read the Sigma rule file ({exc})") from exc
        for error in getattr(collection, "errors", []):
            reports.append(
                ConversionReport(source=str(path), sigma_id=None, title=None, unsupported=[f"invalid Sigma: {error}"])
            )
        for sigma_rule in collection.rules:
            errors = getattr(sigma_rule, "errors", [])
            if errors:
                reports.append(
                    ConversionReport(
                        source=str(path),
                        sigma_id=None,
                        title=sigma_rule.title,
                        unsupported=[f"invalid Sigma: {errors[0]}"],
                    )
                )
                continue
            report, doc = convert_rule(sigma_rule, str(path))
            if doc is not None:
                target = output / f"{report.rule_id}.yaml"
                text_out = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)
                try:
                    compile_rule(yaml.safe_load(text_out), target)
                except RuleFileError as exc:
                    report.unsupported.append(f"converted rule is invalid: {exc}")
                    reports.append(report)
                    continue
                atomic_write(target, text_out, mode=0o644)
                report.output = str(target)
                report.converted = True
            reports.append(report)
    return reports
