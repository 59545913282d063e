"""Sigma import (on rules written here) and the thin mp commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from procaudit.cli.mp import app
from procaudit.detections.rules import CompiledRule, load_rule_file
from procaudit.detections.sigma_import import ConversionReport, import_sigma
from procaudit.errors import EventFileError, UserInputError
from procaudit.events import ProcessCreationEvent, make_event

SIGMA_OK = """\
title: Certutil fetches over HTTP
id: 0b6c3a55-1111-4222-8333-944444444444
status: experimental
description: written for procaudit's tests
author: procaudit tests
tags: [attack.t1105]
logsource: {category: process_creation, product: windows}
detection:
  img:
    - Image|endswith: '\\\\certutil.exe'
    - OriginalFileName: CertUtil.exe
  cli:
    CommandLine|contains|windash: ' -urlcache '
  trusted:
    ParentImage|endswith: '\\\\deploy.exe'
  level:
    IntegrityLevel: High
  condition: img and cli and level and not trusted
level: high
"""

SIGMA_BAD = """\
title: Encoded download
id: 0b6c3a55-1111-4222-8333-955555555555
logsource: {category: process_creation, product: windows}
detection:
  sel:
    CommandLine|base64offset|contains: 'http'
  par:
    ParentCommandLine|contains: 'x'
  condition: sel and par
level: medium
"""


def test_import_sigma_converts_and_reports(tmp_path: Path) -> None:
    (tmp_path / "ok.yml").write_text(SIGMA_OK)
    (tmp_path / "bad.yml").write_text(SIGMA_BAD)
    out = tmp_path / "out"
    reports = import_sigma([tmp_path / "ok.yml", tmp_path / "bad.yml"], out)
    ok, bad = reports
    assert ok.converted and ok.dropped == ["OR branch dropped: field OriginalFileName (not in event 4688)"]
    assert not bad.converted and "modifier |base64offset" in bad.unsupported
    assert any("ParentCommandLine" in u for u in bad.unsupported)
    rule = load_rule_file(Path(ok.output or ""))
    assert rule.rule.enabled is False and rule.rule.mitre == ["T1105"] and rule.rule.author == "procaudit tests"
    hit = {
        "NewProcessName": "C:\\Windows\\System32\\certutil.exe",
        "CommandLine": "certutil /urlcache -f http://x",
        "MandatoryLabel": "S-1-16-12288",
        "ParentProcessName": "C:\\Windows\\explorer.exe",
    }
    assert rule.predicate(make_event(hit, event_version=2))
    assert not rule.predicate(make_event({**hit, "ParentProcessName": "C:\\x\\deploy.exe"}, event_version=2))
    assert not rule.predicate(make_event({**hit, "MandatoryLabel": "S-1-16-8192"}, event_version=2))


def test_cli_build_test_and_import(tmp_path: Path, events_dir: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "mp.xml"
    result = runner.invoke(app, ["build", "--output", str(out), "--version", "1.0.0.9", "--name", "Contoso.PC"])
    assert result.exit_code == 0, result.output
    assert "<Version>1.0.0.9</Version>" in out.read_text() and "blind on" in result.output
    sample = events_dir / "sysmon1" / "sysmon1_rundll32_javascript_mshtml_runhtmlapplication.evtx"
    result = runner.invoke(app, ["test", str(sample), "--format", "json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert set(report) >= {"events", "skipped", "rules", "matches"}
    assert {r["rule_id"]: r["hits"] for r in report["rules"]}["Rundll32MshtmlScript"] == 2
    assert all(m["command_line"].startswith("[redacted") for m in report["matches"])
    shown = json.loads(runner.invoke(app, ["test", str(sample), "--format", "json", "--show-command-lines"]).stdout)
    assert any("RunHTMLApplication" in m["command_line"] for m in shown["matches"])
    table = runner.invoke(app, ["test", str(sample)])
    assert "Rundll32MshtmlScript" in table.output and "RunHTMLApplication" not in table.output
    assert "[redacted, " in table.output  # shown as text, not swallowed as Rich markup
    sigma = tmp_path / "s.yml"
    sigma.write_text(SIGMA_OK)
    assert runner.invoke(app, ["import-sigma", str(sigma), "--output", str(tmp_path / "o")]).exit_code == 0


def test_cli_bad_input_raises_user_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    junk = tmp_path / "junk.evtx"
    junk.write_bytes(b"nothing")
    result = runner.invoke(app, ["test", str(junk)])
    assert isinstance(result.exception, EventFileError)  # main() turns it into one line and exit code 2
    result = runner.invoke(app, ["test", str(junk), "--format", "xml"])
    assert isinstance(result.exception, UserInputError)
    with pytest.raises(UserInputError):
        raise result.exception


# Sigma-shaped rules with filters, as SigmaHQ writes them (selection / filter_main_* / filter_optional_*).
SIGMA_FILTERS = """\
title: Rundll32 without a DLL export {case}
id: 0b6c3a55-1111-4222-8333-96666666666{n}
status: test
description: written for procaudit's tests
author: procaudit tests
tags: [attack.defense-evasion, attack.t1218.011]
logsource: {{category: process_creation, product: windows}}
detection:
  selection:
    Image|endswith: '\\\\rundll32.exe'
    CommandLine|contains: 'javascript:'
{filters}
  condition: {condition}
level: high
"""

FILTER_BLOCKS = {
    # one filter on a field 4688 lacks: dropping it from "not 1 of filter_*" would widen the rule
    "not_one_of_with_unsupported": (
        "  filter_main_edge:\n    ParentImage|endswith: '\\\\msedge.exe'\n"
        "  filter_optional_signed:\n    OriginalFileName: 'RUNDLL32.EXE'\n    Signed: 'true'\n",
        "selection and not 1 of filter_*",
    ),
    "not_or_supported": (
        "  filter_a:\n    ParentImage|endswith: '\\\\msedge.exe'\n"
        "  filter_b:\n    CommandLine|contains: 'trusted.example'\n",
        "selection and not (filter_a or filter_b)",
    ),
    # an AND under NOT: dropping its unsupported part widens the exclusion, so the rule only gets narrower
    "not_and_partly_unsupported": (
        "  filter_vendor:\n    ParentImage|endswith: '\\\\vendor.exe'\n    Product: 'Vendor Suite'\n",
        "selection and not filter_vendor",
    ),
    "not_unsupported_leaf": (
        "  filter_hash:\n    Hashes|contains: 'SHA256=0123'\n",
        "selection and not filter_hash",
    ),
}


def _import_one(tmp_path: Path, key: str, n: int) -> tuple[ConversionReport, CompiledRule | None]:
    filters, condition = FILTER_BLOCKS[key]
    text = SIGMA_FILTERS.format(case=key, n=n, filters=filters, condition=condition)
    source = tmp_path / f"{key}.yml"
    source.write_text(text)
    (report,) = import_sigma([source], tmp_path / "out")
    rule = load_rule_file(Path(report.output)) if report.converted and report.output else None
    return report, rule


def _event(parent: str, command: str = "rundll32.exe javascript:x") -> ProcessCreationEvent:
    fields = {"NewProcessName": "C:\\Windows\\System32\\rundll32.exe", "CommandLine": command}
    return make_event({**fields, "ParentProcessName": parent}, event_version=2)


def test_sigma_not_one_of_filters_with_an_unexpressible_filter_is_refused(tmp_path: Path) -> None:
    report, rule = _import_one(tmp_path, "not_one_of_with_unsupported", 0)
    assert not report.converted and rule is None
    assert any("OriginalFileName" in u for u in report.unsupported)


def test_sigma_not_or_of_filters_excludes_each_filter(tmp_path: Path) -> None:
    report, rule = _import_one(tmp_path, "not_or_supported", 1)
    assert report.converted and not report.dropped
    assert rule is not None
    predicate = rule.predicate
    assert predicate(_event("C:\\Windows\\explorer.exe"))
    assert not predicate(_event("C:\\Program Files\\Microsoft\\Edge\\msedge.exe"))
    assert not predicate(_event("C:\\Windows\\explorer.exe", "rundll32.exe javascript:trusted.example"))


def test_sigma_and_under_not_drops_the_unexpressible_part_and_narrows(tmp_path: Path) -> None:
    report, rule = _import_one(tmp_path, "not_and_partly_unsupported", 2)
    assert report.converted
    assert report.dropped == ["AND part of an exclusion (NOT) dropped: field Product (not in event 4688)"]
    assert rule is not None
    predicate = rule.predicate
    assert predicate(_event("C:\\Windows\\explorer.exe"))
    # every vendor.exe child is excluded now, whatever its product: fewer alerts, never more
    assert not predicate(_event("C:\\Tools\\vendor.exe"))


def test_sigma_not_of_an_unexpressible_filter_is_refused(tmp_path: Path) -> None:
    report, rule = _import_one(tmp_path, "not_unsupported_leaf", 3)
    assert not report.converted and rule is None
    assert any("Hashes" in u for u in report.unsupported)
