"""The raw-text pre-filter of ``mp test`` never hides a match.

Three layers: the IR's necessary conditions hold for every matching event (hypothesis); the pre-filter's facts about
pyevtx-rs's JSON hold on every record of every sample (so its proof applies to them); and on synthetic records,
written the way pyevtx-rs writes them, a ``False`` from the filter always means that no rule matches the decoded
event (hypothesis). ``test_rules.py`` compares whole replays with and without the filter on all samples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from evtx import PyEvtxParser
from hypothesis import given, settings
from hypothesis import strategies as st

from procaudit.detections import ir
from procaudit.detections.prefilter import RawPrefilter, json_text
from procaudit.detections.rules import CompiledRule, compile_rule
from procaudit.events import make_event
from procaudit.events.mapping import MalformedRecord, NotProcessCreation, event_from_dict
from procaudit.events.model import FIELDS
from procaudit.events.readers import _SECURITY_HEADS, _SYSMON_HEADS

# Pieces that the shipped rules look for, in several cases, with the characters that make JSON and regexes tricky.
PIECES = [
    "C:\\Windows\\System32\\",
    "\\cmd.exe",
    "\\CMD.EXE",
    "\\powershell.exe",
    "\\pwsh.exe",
    "\\regsvr32.exe",
    "\\ftp.exe",
    "\\mshta.exe",
    "\\certutil.exe",
    "\\reg.exe",
    "\\Users\\Public\\",
    "\\AppData\\Local\\Temp\\",
    "\\AppData\\Roaming\\",
    "\\Windows\\Temp\\",
    ":\\PerfLogs\\",
    "\\$Recycle.Bin\\",
    " -w hidden",
    " /W 1",
    " -i:http://x/a.sct",
    " /i:",
    "scrobj.dll",
    "mshtml,RunHTMLApplication",
    "javascript:",
    "vbscript:",
    "\\CurrentVersion\\Run",
    " add ",
    "procaudit-verify-0123456789abcdef0123456789abcdef",
    "-urlcache",
    "http://",
    " -s:x.txt",
    "\n",
    "\t",
    '"',
    "\\",
    "\\\\",
    "{",
    "}",
    '","',
    "\u2013w hidden",  # an en dash: the rules accept it, and the record is not ASCII
    "\u017f",  # long s: Python's re folds it onto "s"
    "\u212a",  # Kelvin sign: folds onto "k"
    "x",
    " ",
]
values = st.lists(st.sampled_from(PIECES), max_size=6).map("".join)


def _clause_met(clause: frozenset[ir.Needle], fields: dict[str, str | None]) -> bool:
    for needle in clause:
        value = fields.get(needle.field)
        if value is None:
            continue
        low = value.lower()
        if needle.suffix:
            if low.endswith(needle.text) or low.endswith(needle.text + "\n"):
                return True
        elif needle.text in low:
            return True
    return False


@settings(max_examples=400, deadline=None)
@given(image=values, command=values, parent=values)
def test_required_clauses_hold_for_every_match(
    rules: list[CompiledRule], image: str, command: str, parent: str
) -> None:
    fields: dict[str, str | None] = {"NewProcessName": image, "CommandLine": command, "ParentProcessName": parent}
    if not all(v is None or v.isascii() for v in fields.values()):
        return  # the conditions are only claimed for ASCII values
    event = make_event(fields, event_version=2)
    for rule in rules:
        if rule.predicate(event):
            for clause in rule.clauses:
                assert _clause_met(clause, fields), (rule.id, clause)


def test_needles_examples() -> None:
    doc = {
        "id": "T",
        "title": "t",
        "description": "d",
        "severity": "low",
        "condition": {
            "all-of": [
                {"NewProcessName": {"endswith": "\\Regsvr32.exe"}},
                {"CommandLine": {"contains": ["\u017fcrobj", "\u2013i:"]}},
            ]
        },
    }
    rule = compile_rule(doc)
    assert rule.clauses == (
        frozenset({ir.Needle("NewProcessName", "\\regsvr32.exe", suffix=True)}),
        # the long s can match an ASCII "s"; the en dash matches no ASCII character, so that option needs no needle
        frozenset({ir.Needle("CommandLine", "scrobj")}),
    )
    assert ir.required_clauses(ir.Not(ir.Match("CommandLine", "abc"))) == ()


def test_any_of_distributes_over_its_branches() -> None:
    # (a.exe and alpha) or (b.exe and beta): a b.exe event without "beta" cannot match, and the clauses say so.
    node = ir.AnyOf(
        (
            ir.All((ir.Match("NewProcessName", "\\\\a\\.exe$"), ir.Match("CommandLine", "alpha"))),
            ir.All((ir.Match("NewProcessName", "\\\\b\\.exe$"), ir.Match("CommandLine", "beta"))),
        )
    )
    a_exe = ir.Needle("NewProcessName", "\\a.exe", suffix=True)
    b_exe = ir.Needle("NewProcessName", "\\b.exe", suffix=True)
    alpha, beta = ir.Needle("CommandLine", "alpha"), ir.Needle("CommandLine", "beta")
    assert set(ir.required_clauses(node)) == {
        frozenset({a_exe, b_exe}),
        frozenset({a_exe, beta}),
        frozenset({alpha, b_exe}),
        frozenset({alpha, beta}),
    }
    fields: dict[str, str | None] = {"NewProcessName": "C:\\b.exe", "CommandLine": "gamma"}
    assert not all(_clause_met(clause, fields) for clause in ir.required_clauses(node))


# --- the facts the filter's proof rests on, on every sample record -----------------------------------------


def _evtx_samples(events_dir: Path) -> list[Path]:
    files = sorted(events_dir.rglob("*.evtx"))
    assert files, f"no .evtx samples under {events_dir}"
    return files


def test_pyevtx_json_is_canonical_and_event_shaped(events_dir: Path) -> None:
    checked = 0
    for path in _evtx_samples(events_dir):
        for record in PyEvtxParser(str(path)).records_json():
            text = record["data"]
            doc = json.loads(text)
            # compact serde_json: keys unique (a duplicate would not survive the round trip), escapes as expected
            assert json.dumps(doc, separators=(",", ":"), ensure_ascii=False) == text, path
            event = doc["Event"]
            if "EventData" in event:
                assert list(event)[-1] == "EventData", path  # EventData is Event's last member
                data = event["EventData"]
                if isinstance(data, dict) and all(isinstance(v, str | None) for v in data.values()):
                    assert text.endswith(('"}}}', "null}}}")), path
                    checked += 1
    assert checked > 900


def test_filter_never_drops_a_sample_match(rules: list[CompiledRule], events_dir: Path) -> None:
    """Every record that some rule matches is one the filter sends to decoding."""
    checks = RawPrefilter(rules).checks
    matched = 0
    for path in _evtx_samples(events_dir):
        for record in PyEvtxParser(str(path)).records_json():
            text = record["data"]
            try:
                event = event_from_dict(json.loads(text))
            except (NotProcessCreation, MalformedRecord):
                continue
            if any(rule.predicate(event) for rule in rules):
                matched += 1
                assert checks[event.origin](text, 0), (path, record["event_record_id"])
                assert checks[event.origin](text, _start(text)), (path, record["event_record_id"])
    assert matched >= 10


# --- synthetic records, written as pyevtx-rs writes them ---------------------------------------------------


def _start(text: str) -> int:
    """Where the reader starts the EventData search: past the record head it recognised, else 0."""
    for heads in (_SECURITY_HEADS, _SYSMON_HEADS):
        if text.startswith(heads):
            return len(heads[0]) + len("2024-05-01T10:00:00.000001Z")
    return 0


_SECURITY_SYSTEM = (
    '{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing",'
    '"Guid":"54849625-5478-4994-A5BA-3E3B0328C30D"}},"EventID":4688,"Version":%d,"Level":0,"Task":13312,'
    '"Opcode":0,"Keywords":"0x8020000000000000","TimeCreated":{"#attributes":{"SystemTime":"2024-05-01T10:00:00.000001Z"}},'
    '"EventRecordID":7,"Correlation":null,"Execution":{"#attributes":{"ProcessID":4,"ThreadID":8}},'
    '"Channel":"Security","Computer":"HOST1.corp.example","Security":null}'
)
_SYSMON_SYSTEM = (
    '{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon","Guid":"5770385F-C22A-43E0-BF4C-06F5698FFBD9"}},'
    '"EventID":1,"Version":5,"Level":4,"Task":1,"Opcode":0,"Keywords":"0x8000000000000000",'
    '"TimeCreated":{"#attributes":{"SystemTime":"2024-05-01T10:00:00.000001Z"}},"EventRecordID":9,'
    '"Correlation":null,"Execution":{"#attributes":{"ProcessID":1,"ThreadID":2}},'
    '"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"WS1","Security":{"#attributes":{"UserID":"S-1-5-18"}}}'
)


def _record(system: str, data: dict[str, Any]) -> str:
    head = '{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":'
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f'{head}{system},"EventData":{body}}}}}'


def _security_data(version: int, image: str, command: str, parent: str) -> dict[str, Any]:
    data: dict[str, Any] = dict.fromkeys(FIELDS[:5], "x")
    data.update(NewProcessName=image, TokenElevationType="%%1936", ProcessId="0x4")
    if version >= 1:
        data["CommandLine"] = command
    if version >= 2:
        data.update(TargetUserSid="S-1-0-0", TargetUserName="-", TargetDomainName="-", TargetLogonId="0x0")
        data.update(ParentProcessName=parent, MandatoryLabel="S-1-16-8192")
    return data


@settings(max_examples=600, deadline=None)
@given(
    version=st.sampled_from([0, 1, 2]),
    image=values,
    command=values,
    parent=values,
    drop=st.sampled_from([None, "NewProcessName", "CommandLine", "ParentProcessName"]),
)
def test_filter_says_no_only_when_no_rule_matches(
    rules: list[CompiledRule], version: int, image: str, command: str, parent: str, drop: str | None
) -> None:
    check = RawPrefilter(rules).checks["security"]
    data = _security_data(version, image, command, parent)
    if drop is not None:
        data.pop(drop, None)
    text = _record(_SECURITY_SYSTEM % version, data)
    event = event_from_dict(json.loads(text))
    matched = [rule.id for rule in rules if rule.predicate(event)]
    if not check(text, 0) or not check(text, _start(text)):
        assert not matched


@settings(max_examples=300, deadline=None)
@given(image=values, command=values, parent=values, user=values)
def test_sysmon_filter_says_no_only_when_no_rule_matches(
    rules: list[CompiledRule], image: str, command: str, parent: str, user: str
) -> None:
    check = RawPrefilter(rules).checks["sysmon"]
    data = {
        "RuleName": "-",
        "UtcTime": "2024-05-01 10:00:00.000",
        "ProcessGuid": "{00000000-0000-0000-0000-000000000000}",
        "ProcessId": 4242,
        "Image": image,
        "CommandLine": command,
        "CurrentDirectory": "C:\\",
        "User": user,
        "LogonId": "0x3e7",
        "IntegrityLevel": "High",
        "ParentProcessId": 4,
        "ParentImage": parent,
        "ParentCommandLine": command,
    }
    text = _record(_SYSMON_SYSTEM, data)
    event = event_from_dict(json.loads(text))
    matched = [rule.id for rule in rules if rule.predicate(event)]
    if not check(text, 0) or not check(text, _start(text)):
        assert not matched


MARKER = "cmd /c rem procaudit-verify-" + "ab" * 16


@pytest.mark.parametrize(
    ("image", "command", "parent"),
    [
        ("C:\\Windows\\System32\\cmd.exe", MARKER, "x"),
        ("C:\\WINDOWS\\SYSTEM32\\CMD.EXE", MARKER, "x"),
        ("C:\\Windows\\System32\\cmd.exe\n", MARKER, "x"),  # "$" also matches before a final line feed
        ("C:\\Users\\Public\\a.exe", "a", "x"),
        ("C:\\x\\calc.exe", "calc", "C:\\Windows\\System32\\ftp.exe\n"),
        ("C:\\x\\calc.exe", 'rundll32 "javascript:\\..\\mshtml,RunHTMLApplication "', "x"),
        ("C:\\x\\r.exe", "r /i:http://a/b scrobj.dll", "x"),
    ],
)
def test_filter_keeps_known_matches(rules: list[CompiledRule], image: str, command: str, parent: str) -> None:
    check = RawPrefilter(rules).checks["security"]
    text = _record(_SECURITY_SYSTEM % 2, _security_data(2, image, command, parent))
    event = event_from_dict(json.loads(text))
    assert any(rule.predicate(event) for rule in rules)
    assert check(text, 0) and check(text, _start(text))


def test_filter_drops_plain_noise(rules: list[CompiledRule]) -> None:
    check = RawPrefilter(rules).checks["security"]
    for image in ("C:\\Windows\\System32\\conhost.exe", "C:\\Windows\\System32\\cmd.exe"):
        command = "\\??\\C:\\Windows\\system32\\conhost.exe 0x4"
        text = _record(_SECURITY_SYSTEM % 2, _security_data(2, image, command, "C:\\Windows\\x.exe"))
        assert not check(text, 0) and not check(text, _start(text))


@pytest.mark.parametrize("text", ["a\\b", 'say "hi"', "line\nfeed", "tab\there", "\x01"])
def test_json_text_is_how_json_writes_it(text: str) -> None:
    assert json.dumps({"k": text}, separators=(",", ":")) == '{"k":"' + json_text(text) + '"}'
