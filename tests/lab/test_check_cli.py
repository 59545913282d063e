"""procaudit check / verify / collector as an administrator runs them (subprocess) against the lab."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from procaudit.lab.profiles import build_host
from procaudit.readiness.collector import probe_sha256
from tests.lab.conftest import LabHandle, start_lab
from tests.lab.test_cli import creds, run_cli
from tests.unit.readiness.conftest import probe_lab_host


@pytest.fixture(scope="module")
def cli_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    yield from start_lab(tmp_path_factory.mktemp("check-cli-lab"), ["ready", "cmdline-off", "fresh-2019"])


def test_check_json_shape_and_exit_1(cli_lab: LabHandle) -> None:
    result = run_cli("check", "-i", str(cli_lab.inventory), "--format", "json", env=creds(cli_lab))
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == "procaudit.check/1" and report["lab"] is True and report["source"] == "winrm"
    statuses = {h["host"]: h["status"] for h in report["hosts"]}
    assert statuses == {"lab-ready-01": "READY", "lab-cmdline-off-01": "NOT_READY", "lab-fresh-2019-01": "NOT_READY"}
    for host in report["hosts"]:
        assert {f["check_id"] for f in host["findings"]} >= {"cmdline_inclusion_enabled", "policy_source_consistent"}
    assert report["summary"]["groups"] == [
        {"group": "servers", "total": 3, "ready": 1, "not_ready": 2, "unknown": 0, "error": 0}
    ]
    assert "1 of 3 hosts ready" in result.stderr
    assert cli_lab.credentials.password not in result.stdout + result.stderr


def test_check_ready_hosts_exit_0_and_skip(cli_lab: LabHandle, tmp_path: Path) -> None:
    out = tmp_path / "ready.csv"
    result = run_cli(
        "check",
        "-i",
        str(cli_lab.inventory),
        "-l",
        "lab-ready-*",
        "--skip",
        "scom_agent_healthy",
        "-f",
        "csv",
        "-o",
        str(out),
        env=creds(cli_lab),
    )
    assert result.returncode == 0, result.stderr
    rows = out.read_text().splitlines()
    assert rows[0] == "host,groups,host_status,check_id,severity,status,detail,lab" and len(rows) == 11
    assert any(",scom_agent_healthy,medium,SKIPPED," in r for r in rows)
    assert out.stat().st_mode & 0o777 == 0o600


def test_check_html_report_file(cli_lab: LabHandle, tmp_path: Path) -> None:
    out = tmp_path / "readiness.html"
    result = run_cli("check", "-i", str(cli_lab.inventory), "-f", "html", "-o", str(out), env=creds(cli_lab))
    assert result.returncode == 1, result.stderr
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and 'id="readiness-chart"' in html and "lab-cmdline-off-01" in html


def test_check_bad_input_is_one_line_exit_2(cli_lab: LabHandle, tmp_path: Path) -> None:
    both = run_cli("check", "-i", str(cli_lab.inventory), "--evidence", str(tmp_path), env=creds(cli_lab))
    assert both.returncode == 2 and "either --inventory" in both.stderr and "Traceback" not in both.stderr
    skip = run_cli("check", "-i", str(cli_lab.inventory), "--skip", "no_such_check", env=creds(cli_lab))
    assert skip.returncode == 2 and "unknown check id(s) no_such_check" in skip.stderr
    empty = run_cli("check", "--evidence", str(tmp_path))
    assert empty.returncode == 2 and "no .json files" in empty.stderr


def test_verify_cli_redacts_unless_asked(cli_lab: LabHandle) -> None:
    args = ("verify", "-i", str(cli_lab.inventory), "-l", "lab-ready-*", "-f", "json")
    hidden = run_cli(*args, env=creds(cli_lab))
    assert hidden.returncode == 0, hidden.stderr
    host = json.loads(hidden.stdout)["hosts"][0]
    assert host["status"] == "PASS" and host["event"]["command_line"].startswith("[redacted")
    assert "procaudit-verify-" not in hidden.stdout
    shown = run_cli(*args, "--show-command-lines", env=creds(cli_lab))
    assert "procaudit-verify-" in json.loads(shown.stdout)["hosts"][0]["event"]["command_line"]


def test_verify_cli_fail_exit_1(cli_lab: LabHandle) -> None:
    result = run_cli(
        "verify", "-i", str(cli_lab.inventory), "-l", "lab-fresh-*", "--timeout", "1", "-f", "csv", env=creds(cli_lab)
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[1].startswith("lab-fresh-2019-01,FAIL,no_event,")


def write_evidence(path: Path, profile: str, sha: str) -> None:
    raw = probe_lab_host(build_host(profile, f"ev-{profile}"))
    document = {"Format": "procaudit-evidence/1", "ProbeSha256": sha, "Result": raw.model_dump(by_alias=True)}
    # As Collect-ProcAudit.ps1 writes it: UTF-8 without BOM.
    path.write_text(json.dumps(document), encoding="utf-8")


def test_check_evidence_from_collector_files(tmp_path: Path) -> None:
    write_evidence(tmp_path / "EV-READY.procaudit.json", "ready", probe_sha256())
    write_evidence(tmp_path / "EV-WIN7.procaudit.json", "win7-no-kb", "0" * 64)
    (tmp_path / "broken.procaudit.json").write_text('{"Format": "procaudit-evidence/1", "Result": {"OS": 1}}')
    result = run_cli("check", "--evidence", str(tmp_path), "-f", "json")
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    assert report["source"] == "evidence" and report["lab"] is False
    hosts = {h["host"]: h for h in report["hosts"]}
    assert hosts["EV-READY"]["status"] == "READY"
    assert hosts["EV-WIN7-NO-KB"]["status"] == "NOT_READY"
    assert "os_supports_cmdline" in hosts["EV-WIN7-NO-KB"]["blocked_by"]
    assert "another probe version" in hosts["EV-WIN7-NO-KB"]["problems"]["probe"]
    assert hosts["EV-READY"]["problems"] == {}
    broken = hosts["broken.procaudit"]
    assert broken["status"] == "ERROR" and broken["error"]["kind"] == "contract"


@pytest.mark.slow
def test_demo_runs_check_and_verify() -> None:
    result = run_cli("demo", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ". check:" in result.stderr and ". verify:" in result.stderr
    assert "3 of 14 hosts ready" in result.stderr  # ready x2 and readers-exposed (WARN only)
    assert "6 of 14 hosts log 4688 with the command line" in result.stderr
    assert "procaudit-verify-" not in result.stdout  # command lines redacted by default
