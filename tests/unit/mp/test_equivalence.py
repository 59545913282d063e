"""The Python evaluator, the emitted SCOM expression and plain string semantics agree.

The SCOM side is read back from the built MP XML and interpreted as SCOM does: And / Or / Not, and
RegExExpression MatchesRegularExpression as a .NET regex search (the subset reads the same in Python's re).
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from procaudit.detections import mpbuild
from procaudit.detections.rules import CompiledRule, compile_rule
from procaudit.events import make_event

ALPHABET = 'abcABC\\/.:-\u2013" \n\txyz$[]()*'  # \u2013: an en dash, as command lines carry
texts = st.text(alphabet=ALPHABET, max_size=12)


def scom_eval(expression: etree._Element, values: dict[str, str | None]) -> bool:
    """Interpret one <Expression> element the way SCOM's expression filter does."""
    (node,) = list(expression)
    if node.tag == "And":
        return all(scom_eval(child, values) for child in node)
    if node.tag == "Or":
        return any(scom_eval(child, values) for child in node)
    if node.tag == "Not":
        return not scom_eval(node[0], values)
    if node.tag == "SimpleExpression":
        return True  # EventDisplayNumber = 4688: every test event is a 4688
    assert node.tag == "RegExExpression" and node.findtext("Operator") == "MatchesRegularExpression"
    param = int(re.search(r"Param\[(\d+)\]", node.findtext("ValueExpression/XPathQuery") or "").group(1))  # type: ignore[union-attr]
    field = list(values)[param - 1]
    value = values[field]
    return value is not None and re.search(node.findtext("Pattern") or "", value) is not None


def reference(op: str, value: str, needle: str, ignore_case: bool) -> bool:
    """Plain string semantics of the rule operators; '$' also accepts one final line feed."""
    v, n = (value.casefold(), needle.casefold()) if ignore_case else (value, needle)
    ends = v.endswith(n) or v.endswith(n + "\n")
    return {
        "contains": n in v,
        "not-contains": n not in v,
        "startswith": v.startswith(n),
        "endswith": ends,
        "equals": v == n or v == n + "\n",
    }[op]


def _compiled(op: str, needle: str, case_sensitive: bool) -> CompiledRule:
    doc = {
        "id": "T",
        "title": "t",
        "description": "d",
        "severity": "low",
        "condition": {"all-of": [{"CommandLine": {op: needle, "case_sensitive": case_sensitive}}]},
    }
    return compile_rule(doc)


FIELD_ORDER = [
    "SubjectUserSid",
    "SubjectUserName",
    "SubjectDomainName",
    "SubjectLogonId",
    "NewProcessId",
    "NewProcessName",
    "TokenElevationType",
    "ProcessId",
    "CommandLine",
]


@settings(max_examples=400, deadline=None)
@given(
    op=st.sampled_from(["contains", "not-contains", "startswith", "endswith", "equals"]),
    needle=st.text(alphabet=ALPHABET.replace("\n", ""), min_size=1, max_size=5),
    value=texts,
    case_sensitive=st.booleans(),
)
def test_operator_semantics_three_ways(op: str, needle: str, value: str, case_sensitive: bool) -> None:
    rule = _compiled(op, needle, case_sensitive)
    xml = mpbuild.build([rule], mp_id="Eq.Test").xml
    root = etree.fromstring(xml.encode())
    expression = root.find("Monitoring/Rules/Rule/DataSources/DataSource/Expression")
    values: dict[str, str | None] = dict.fromkeys(FIELD_ORDER, "x")
    values["CommandLine"] = value
    python = rule.predicate(make_event(values, event_version=1))
    scom = scom_eval(expression, values)  # type: ignore[arg-type]
    assert python == scom == reference(op, value, needle, not case_sensitive)


@settings(max_examples=300, deadline=None)
@given(value=texts, parent=st.one_of(st.none(), texts))
def test_shipped_rules_python_equals_scom(rules: list[CompiledRule], value: str, parent: str | None) -> None:
    xml = mpbuild.build(rules).xml
    root = etree.fromstring(xml.encode())
    for rule, element in zip(rules, root.iterfind("Monitoring/Rules/Rule"), strict=True):
        expression = element.find("DataSources/DataSource/Expression")
        for name in ("\\cmd.exe", "\\powershell.exe", "C:\\Users\\Public\\a.exe"):
            values: dict[str, str | None] = dict.fromkeys(mpbuild.PARAM_INDEX, "x")
            values.update(NewProcessName=name, CommandLine=value, ParentProcessName=parent)
            event = make_event(values, event_version=2)
            assert rule.predicate(event) == scom_eval(expression, values), rule.id  # type: ignore[arg-type]
