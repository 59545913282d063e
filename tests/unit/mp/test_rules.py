"""Shipped rules: their own tests, the samples, the pinned noise-corpus hits, and clear errors for bad rule files."""

from __future__ import annotations

from pathlib import Path

import pytest

from procaudit.detections.replay import replay
from procaudit.detections.rules import CompiledRule, load_rule_file, load_rules
from procaudit.errors import RuleFileError
from procaudit.events import make_event, read_events

REQUIRED = {
    "Regsvr32ScriptletExecution",
    "Rundll32MshtmlScript",
    "FtpScriptedSession",
    "FtpSpawnsProcess",
    "PowerShellHiddenWindow",
    "ExecFromNonProgramFolder",
    "ExecFromUserTempOrRoaming",
    "RunKeyModification",
    "ProcauditVerifyCanary",
}

#: Hits per rule on the OTRF noise corpus (509 events from many lab captures). Every hit is a true attack:
#: Empire regsvr32 scriptlet; Empire "-w 1" launchers (x2); mshta javascript:/vbscript: (x2).
CORPUS_HITS = {
    "CertutilDownload": 0,
    "ExecFromNonProgramFolder": 0,
    "ExecFromUserTempOrRoaming": 0,
    "FtpScriptedSession": 0,
    "FtpSpawnsProcess": 0,
    "MshtaInlineOrRemoteScript": 2,
    "PowerShellHiddenWindow": 2,
    "ProcauditVerifyCanary": 0,
    "Regsvr32ScriptletExecution": 1,
    "RunKeyModification": 0,
    "Rundll32MshtmlScript": 0,
}


def test_required_rules_ship_with_positive_and_negative_tests(rules: list[CompiledRule]) -> None:
    ids = {rule.id for rule in rules}
    assert ids >= REQUIRED
    for rule in rules:
        expectations = {test.expect for test in rule.rule.tests}
        assert expectations == {"alert", "quiet"}, rule.id
        assert rule.rule.samples, f"{rule.id} has no sample-file test"


def test_inline_tests(rules: list[CompiledRule]) -> None:
    failures = []
    for rule in rules:
        for test in rule.rule.tests:
            fields = dict(test.event)
            version = fields.pop("event_version", 2)
            event = make_event(
                {k: None if v is None else str(v) for k, v in fields.items()}, event_version=int(version or 0)
            )
            got = "alert" if rule.predicate(event) else "quiet"
            if got != test.expect:
                failures.append(f"{rule.id}: {test.name}: expected {test.expect}, got {got}")
    assert not failures, "\n".join(failures)


def test_sample_files(rules: list[CompiledRule], events_dir: Path) -> None:
    failures = []
    for rule in rules:
        for sample in rule.rule.samples:
            hits = [e for e in read_events(events_dir / sample.file) if rule.predicate(e)]
            if len(hits) != sample.hits:
                failures.append(f"{rule.id}: {sample.file}: expected {sample.hits} hits, got {len(hits)}")
            if sample.record_ids is not None and sorted(e.record_id for e in hits) != sorted(sample.record_ids):
                failures.append(f"{rule.id}: {sample.file}: other records matched")
    assert not failures, "\n".join(failures)


def test_noise_corpus_pinned(rules: list[CompiledRule], events_dir: Path) -> None:
    result = replay([events_dir / "otrf" / "otrf_security_4688_corpus_a.jsonl"], rules)
    assert result.events == 509 and result.skipped == 0
    assert {r.rule_id: r.hits for r in result.rules} == CORPUS_HITS


def test_prefilter_changes_nothing(rules: list[CompiledRule], events_dir: Path) -> None:
    files = sorted(p for p in events_dir.rglob("*") if p.suffix in (".evtx", ".json", ".jsonl"))
    fast = replay(files, rules, prefilter=True)
    slow = replay(files, rules, prefilter=False)
    assert fast.model_dump() == slow.model_dump()
    assert fast.events == 1706


def test_version_analysis(rules: list[CompiledRule]) -> None:
    by_id = {rule.id: rule for rule in rules}
    assert by_id["FtpSpawnsProcess"].blind_versions == [0, 1]
    assert by_id["FtpSpawnsProcess"].min_event_version == 2
    assert by_id["ExecFromNonProgramFolder"].min_event_version == 0
    assert by_id["PowerShellHiddenWindow"].blind_versions == [0]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


GOOD = """\
id: Good.Rule_1
title: t
description: d
severity: low
condition:
  all-of:
    - NewProcessName: {endswith: '\\x.exe'}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("Good.Rule_1", "Bad-Rule"), r"bad.yaml:1: rule 'Bad-Rule': id: .*no hyphens"),
        (GOOD.replace("severity: low", "severity: urgent"), r"bad.yaml:4: rule 'Good.Rule_1': severity"),
        (GOOD.replace("NewProcessName", "Image"), r"bad.yaml:7: .*condition.all-of.0.Image: unknown field 'Image'"),
        (GOOD.replace("endswith", "ends"), r"bad.yaml:7: .*unknown operator 'ends'"),
        (
            GOOD.replace("{endswith: '\\x.exe'}", "{regex: '\\d+'}"),
            r"bad.yaml:7: .*regex outside SCOM's supported subset.*\[0-9\]",
        ),
        (GOOD.replace("{endswith: '\\x.exe'}", "{regex: 'a{,3}'}"), r"write \{0,n\}"),
        (GOOD.replace("{endswith: '\\x.exe'}", "{regex: '(?i)x'}"), r"inline options"),
        (GOOD.replace("all-of:", "some-of:"), r"bad.yaml:6: .*condition.some-of: unknown field .*all-of / any-of"),
        (GOOD + "min_event_version: 2\n", r"bad.yaml:8: .*min_event_version: .* imply 0, not 2"),
        (GOOD + "severity: high\n", r"bad.yaml:8: not valid YAML|duplicate key"),
        (GOOD + '    - CommandLine: {contains: "a\\rb"}\n', r"bad.yaml:8: .*control character"),
        ("- a\n- b\n", r"expected one rule"),
        ("id: [unclosed\n", r"bad.yaml:\d+: not valid YAML"),
    ],
)
def test_bad_rule_files_name_file_rule_field_and_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(RuleFileError, match=expected):
        load_rule_file(_write(tmp_path, text))


def test_good_rule_loads(tmp_path: Path) -> None:
    assert load_rule_file(_write(tmp_path, GOOD)).min_event_version == 0


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(RuleFileError, match="already used by"):
        load_rules(tmp_path)


def test_noisy_rules_ship_disabled(rules: list[CompiledRule]) -> None:
    # Per-user Temp / roaming AppData execution is common for installers and updaters: it must be baselined first.
    by_id = {rule.id: rule for rule in rules}
    assert by_id["ExecFromUserTempOrRoaming"].rule.enabled is False
    assert all(rule.rule.enabled for rule_id, rule in by_id.items() if rule_id != "ExecFromUserTempOrRoaming")
