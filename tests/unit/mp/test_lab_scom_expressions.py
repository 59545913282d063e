"""The lab's SCOM alert evaluator reads RegExExpression patterns in SCOM's documented subset only, and agrees with
procaudit's own matcher on every shipped rule's expression."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from procaudit.detections import mpbuild
from procaudit.detections.rules import CompiledRule
from procaudit.events import read_events
from procaudit.events.model import FIELDS
from procaudit.lab.handlers.scom import _evaluate, scom_pattern
from procaudit.lab.model import RecordedEvent
from procaudit.lab.profiles import build_host


def _expression(pattern: str, operator: str = "MatchesRegularExpression") -> etree._Element:
    return etree.fromstring(
        "<Expression><RegExExpression><ValueExpression><XPathQuery Type='String'>Params/Param[9]</XPathQuery>"
        f"</ValueExpression><Operator>{operator}</Operator><Pattern>{pattern}</Pattern></RegExExpression></Expression>"
    )


def _event(command_line: str) -> RecordedEvent:
    return RecordedEvent(event_id=4688, time=datetime.now(UTC), record_id=1, fields={"CommandLine": command_line})


@pytest.mark.parametrize(
    "pattern",
    [
        "procaudit-verify-\\d{32}",  # \d: .NET and Python have it, the documented subset does not
        "(?i)x(?=y)",  # lookahead
        "a(?i)b",  # an inline option anywhere but at the start
        "x{,3}",  # Python reads {0,3}, .NET literal text
    ],
)
def test_patterns_outside_the_subset_never_match(pattern: str) -> None:
    host = build_host("ready", "ws01")
    assert scom_pattern(pattern) is None
    value = "procaudit-verify-" + "1" * 32 + " xy x{,3} ab"
    assert not _evaluate(_expression(pattern), host, _event(value))
    assert not _evaluate(_expression(pattern, "DoesNotMatchRegularExpression"), host, _event(value))


def test_subset_patterns_match_with_the_case_prefix() -> None:
    host = build_host("ready", "ws01")
    assert _evaluate(_expression("(?i)\\\\REGSVR32\\.exe"), host, _event("C:\\Windows\\System32\\regsvr32.exe /s"))
    assert not _evaluate(_expression("\\\\REGSVR32\\.exe"), host, _event("C:\\Windows\\System32\\regsvr32.exe /s"))
    assert _evaluate(_expression("[0-9]{2}", "DoesNotMatchRegularExpression"), host, _event("a1b"))


def test_shipped_rules_lab_equals_procaudit(rules: list[CompiledRule], events_dir: Path) -> None:
    root = etree.fromstring(mpbuild.build(rules).xml.encode("utf-8"))
    expressions = {
        (rule.get("ID") or "").rsplit(".", 1)[-1]: rule.find("DataSources/DataSource/Expression")
        for rule in root.iterfind("Monitoring/Rules/Rule")
    }
    host = build_host("ready", "ws01")
    files = sorted(p for p in events_dir.rglob("*") if p.suffix in (".evtx", ".json", ".jsonl"))
    compared = 0
    for path in files:
        for event in read_events(path):
            fields = {name: value for name in FIELDS if (value := event.field(name)) is not None}
            recorded = RecordedEvent(event_id=4688, time=datetime.now(UTC), record_id=0, fields=fields)
            for rule in rules:
                expression = expressions[rule.id]
                assert expression is not None
                assert _evaluate(expression, host, recorded) == rule.predicate(event), (rule.id, path.name)
                compared += 1
    assert compared > 10_000
