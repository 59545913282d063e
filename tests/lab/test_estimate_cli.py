"""``procaudit estimate`` and ``procaudit plan`` as an administrator runs them (subprocess) against the lab."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree, html

from .conftest import LabHandle, start_lab
from .test_cli import creds, run_cli


@pytest.fixture(scope="module")
def cli_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    yield from start_lab(
        tmp_path_factory.mktemp("estimate-cli-lab"),
        ["ready", "rds", "dc", "workstation", "gpo-managed", "fresh-2019"],
        ["lab-fresh-2019-01=down"],
    )


@pytest.fixture(scope="module")
def estimate_json(cli_lab: LabHandle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("estimate-out") / "est.json"
    result = run_cli(
        "estimate", "-i", str(cli_lab.inventory), "--sample", "2s", "--connect-timeout", "1", "-o", str(out),
        env=creds(cli_lab),
    )  # fmt: skip
    assert result.returncode == 3, result.stderr  # one host is down
    assert "6 hosts (1 ERROR, 5 OK)" in result.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    return out


def test_estimate_json_shape(estimate_json: Path, cli_lab: LabHandle) -> None:
    report = json.loads(estimate_json.read_text())
    assert report["schema"] == "procaudit.estimate/1"
    assert report["settings"]["sample_seconds"] == 2 and report["settings"]["window_hours"] == 168
    hosts = {h["host"]: h for h in report["hosts"]}
    assert sorted(hosts) == [h["host"] for h in report["hosts"]]
    assert all(h["lab"] is True and h["status"] in ("OK", "ERROR") for h in hosts.values())
    assert hosts["lab-fresh-2019-01"]["status"] == "ERROR"
    assert hosts["lab-fresh-2019-01"]["error"]["kind"] == "unreachable"
    assert {n: h["estimate"]["method"] for n, h in hosts.items() if h["estimate"]} == {
        "lab-ready-01": "4688",
        "lab-rds-01": "4688",
        "lab-dc-01": "sample",
        "lab-workstation-01": "sysmon1",
        "lab-gpo-managed-01": "4689",
    }
    assert {g["group"] for g in report["groups"]} == {"servers", "rds", "dcs", "workstations"}
    assert report["totals"]["hosts"] == 6 and report["totals"]["estimated"] == 5
    assert cli_lab.credentials.password not in estimate_json.read_text()


def test_estimate_csv_and_table(cli_lab: LabHandle, tmp_path: Path) -> None:
    out = tmp_path / "est.csv"
    result = run_cli(
        "estimate", "-i", str(cli_lab.inventory), "--limit", "servers,!lab-fresh*", "--sample", "0", "-o", str(out),
        env=creds(cli_lab),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["host"] for r in rows] == ["lab-gpo-managed-01", "lab-ready-01"]
    assert rows[1]["method"] == "4688" and float(rows[1]["events_per_day"]) > 0 and rows[1]["lab"] == "True"
    table = run_cli("estimate", "-i", str(cli_lab.inventory), "--limit", "dcs", "--sample", "1s", env=creds(cli_lab))
    assert table.returncode == 0, table.stderr
    assert "LAB hosts" in table.stdout and "lab-dc-01" in table.stdout and "sample" in table.stdout


def test_estimate_html_is_self_contained_with_a_stacked_chart(cli_lab: LabHandle, tmp_path: Path) -> None:
    out = tmp_path / "est.html"
    result = run_cli(
        "estimate", "-i", str(cli_lab.inventory), "--limit", "all,!lab-fresh*", "--sample", "1s", "-o", str(out),
        env=creds(cli_lab),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = html.fromstring(out.read_bytes())
    assert not document.xpath("//script | //link | //img | //*[@src]"), "no external or active content"
    (svg,) = document.xpath("//*[local-name()='svg']")
    bars = etree.tostring(svg).decode()
    assert "lab-rds-01" in bars and "all hosts" in bars
    segments = svg.xpath(".//*[local-name()='rect'][@data-value]")
    hosts = {r.xpath("string(*[local-name()='title'])").split(":")[0]: float(r.get("data-value")) for r in segments}
    by_host = {k: v for k, v in hosts.items() if k.startswith("lab-")}
    by_group = {k: v for k, v in hosts.items() if not k.startswith("lab-")}
    assert len(by_host) == 5 and set(by_group) == {"servers", "rds", "dcs", "workstations"}
    # the estate bar stacks the same events as the group bars
    assert sum(by_group.values()) == pytest.approx(sum(by_host.values()), rel=1e-3)
    assert "LAB hosts" in out.read_text()


def test_plan_from_the_estimate_is_deterministic(cli_lab: LabHandle, estimate_json: Path, tmp_path: Path) -> None:
    args = ["plan", "-i", str(cli_lab.inventory), "--estimate", str(estimate_json), "--max-events-per-sec", "1",
            "--max-hosts", "2", "--soak", "10m", "--max-fail-percent", "10"]  # fmt: skip
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for out in (first, second):
        result = run_cli(*args, "-o", str(out))
        assert result.returncode == 0, result.stderr
    assert first.read_bytes() == second.read_bytes()
    assert first.stat().st_mode & 0o777 == 0o600
    plan = json.loads(first.read_text())
    assert plan["schema"] == "procaudit.plan/1"
    waves = plan["waves"]
    assert waves[0]["kind"] == "canary" and waves[-1]["kind"] == "unknown"
    assert waves[-1]["volume_unknown"] == ["lab-fresh-2019-01"]
    assert {w["kind"] for w in waves} >= {"busy", "dc"}
    assert all(w["soak_seconds"] == 600 and w["max_fail_percent"] == 10 for w in waves)
    hosts = {h["host"]: h for h in plan["hosts"]}
    assert set(hosts) == {"lab-ready-01", "lab-rds-01", "lab-dc-01", "lab-workstation-01", "lab-gpo-managed-01",
                          "lab-fresh-2019-01"}  # fmt: skip
    assert all(h["status"] == "PLANNED" and h["lab"] is True for h in hosts.values())
    assert hosts["lab-dc-01"]["dc"] and hosts["lab-rds-01"]["busy"]
    resized = {c["host"] for w in waves for c in w["log_size_changes"]}
    assert "lab-rds-01" in resized and "lab-ready-01" not in resized  # 64 MB cannot keep 14 days; 512 MB can
    assert plan["estimate_sha256"] == __import__("hashlib").sha256(estimate_json.read_bytes()).hexdigest()


def test_plan_table_and_html(cli_lab: LabHandle, estimate_json: Path, tmp_path: Path) -> None:
    table = run_cli("plan", "-i", str(cli_lab.inventory), "-e", str(estimate_json))
    assert table.returncode == 0, table.stderr
    assert "canary" in table.stdout and "Security log sizes the plan will request" in table.stdout
    assert "6 hosts in" in table.stderr and "unknown volume planned last" in table.stderr
    out = tmp_path / "plan.html"
    result = run_cli("plan", "-i", str(cli_lab.inventory), "-e", str(estimate_json), "-o", str(out))
    assert result.returncode == 0, result.stderr
    document = html.fromstring(out.read_bytes())
    assert not document.xpath("//script | //link | //img | //*[@src]")
    assert document.xpath("//*[local-name()='svg']//*[local-name()='line']"), "the rate cap is drawn"
    assert "wave-02" in out.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--canary", "0"], "--canary"),
        (["--canary", "150%"], "--canary"),
        (["--soak", "ten minutes"], "--soak"),
        (["--max-fail-percent", "120"], "--max-fail-percent"),
        (["--max-events-per-sec", "0"], "--max-events-per-sec"),
        (["--format", "csv"], "--format csv"),
    ],
)
def test_plan_bad_options_exit_2(cli_lab: LabHandle, estimate_json: Path, args: list[str], message: str) -> None:
    result = run_cli("plan", "-i", str(cli_lab.inventory), "-e", str(estimate_json), *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        ("{not json", "not JSON"),
        ('{"schema": "something else", "hosts": []}', "not a procaudit estimate"),
        ('{"schema": "procaudit.estimate/1", "hosts": 3}', "not a valid procaudit estimate"),
    ],
)
def test_plan_bad_estimate_file_exit_2(cli_lab: LabHandle, tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "est.json"
    if content is not None:
        path.write_text(content)
    result = run_cli("plan", "-i", str(cli_lab.inventory), "-e", str(path))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--window", "0"], "--window"), (["--window", "90m"], "--window"), (["--sample", "2h"], "--sample")],
)
def test_estimate_bad_options_exit_2(cli_lab: LabHandle, args: list[str], message: str) -> None:
    result = run_cli("estimate", "-i", str(cli_lab.inventory), *args, env=creds(cli_lab))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_demo_runs_estimate_and_plan() -> None:
    result = run_cli("demo", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert ". estimate:" in result.stderr and ". plan:" in result.stderr
    assert "procaudit plan - LAB hosts" in result.stdout and "canary" in result.stdout
