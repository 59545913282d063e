"""The real command line (a subprocess, as an administrator runs it) against the lab."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.conftest import LabHandle, start_lab


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "procaudit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def creds(handle: LabHandle) -> dict[str, str]:
    return {"PROCAUDIT_USER": handle.credentials.username, "PROCAUDIT_PASSWORD": handle.credentials.password}


@pytest.fixture(scope="module")
def small_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    yield from start_lab(tmp_path_factory.mktemp("cli-lab"), ["ready", "dc", "workstation"])


def test_ping_json_on_a_healthy_lab(small_lab: LabHandle) -> None:
    result = run_cli("ping", "-i", str(small_lab.inventory), "--format", "json", env=creds(small_lab))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [h["host"] for h in report["hosts"]] == ["lab-dc-01", "lab-ready-01", "lab-workstation-01"]
    for host in report["hosts"]:
        assert host["status"] == "OK" and host["lab"] is True and host["authenticated"] is True
    assert {h["os_build"] for h in report["hosts"]} == {"20348", "17763", "19045"}
    assert "3 hosts: 3 OK" in result.stderr
    assert small_lab.credentials.password not in result.stdout + result.stderr


def test_ping_limit_and_csv(small_lab: LabHandle, tmp_path: Path) -> None:
    out = tmp_path / "ping.csv"
    result = run_cli(
        "ping", "-i", str(small_lab.inventory), "--limit", "dcs", "-f", "csv", "-o", str(out), env=creds(small_lab)
    )
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("host,address,status") and len(lines) == 2 and lines[1].startswith("lab-dc-01,")
    assert out.stat().st_mode & 0o777 == 0o600


def test_ping_exit_3_and_classification_with_faults(fault_lab: LabHandle) -> None:
    result = run_cli(
        "ping",
        "-i",
        str(fault_lab.inventory),
        "-f",
        "json",
        "--connect-timeout",
        "1",
        "--script-timeout",
        "3",
        env=creds(fault_lab),
    )
    assert result.returncode == 3, result.stderr
    kinds = {h["host"]: (h["error"] or {}).get("kind", "ok") for h in json.loads(result.stdout)["hosts"]}
    assert kinds == {
        "lab-ready-01": "ok",
        "lab-ready-02": "ok",
        "lab-small-log-01": "ok",
        "lab-dc-01": "unreachable",
        "lab-rds-01": "unreachable",
        "lab-workstation-01": "auth",
        "lab-cmdline-off-01": "timeout",
        "lab-fresh-2019-01": "dropped",
    }


def test_wrong_password_exit_3_without_leaking_it(small_lab: LabHandle) -> None:
    env = {"PROCAUDIT_USER": small_lab.credentials.username, "PROCAUDIT_PASSWORD": "Canary-Pa55-word"}
    result = run_cli("ping", "-i", str(small_lab.inventory), env=env)
    assert result.returncode == 3
    assert "Canary-Pa55-word" not in result.stdout + result.stderr
    assert "rejected the credentials" in result.stdout


def test_malformed_inventory_is_a_clean_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  dcs:\n    hosts:\n      dc01: {port: high}\n")
    result = run_cli("ping", "-i", str(bad), env={"PROCAUDIT_USER": "u", "PROCAUDIT_PASSWORD": "p"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:4: host 'dc01': port must be int" in result.stderr.replace("\n", "")


def test_missing_password_without_a_terminal(small_lab: LabHandle) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCAUDIT_")}
    result = subprocess.run(
        [sys.executable, "-m", "procaudit", "ping", "-i", str(small_lab.inventory)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 2
    assert "set PROCAUDIT_USER" in result.stderr and "Traceback" not in result.stderr


def test_bad_option_values_exit_2(small_lab: LabHandle) -> None:
    result = run_cli("ping", "-i", str(small_lab.inventory), "--auth", "basic", env=creds(small_lab))
    assert result.returncode == 2 and "Basic auth is not supported" in result.stderr
    result = run_cli("ping", "-i", str(small_lab.inventory), "--workers", "0", env=creds(small_lab))
    assert result.returncode == 2


def test_lab_up_serves_until_sigterm(tmp_path: Path) -> None:
    inventory = tmp_path / "up.yml"
    env = {**os.environ, "PROCAUDIT_USER": "LAB\\tester", "PROCAUDIT_PASSWORD": "Lab-Up-Secret-1"}
    subnet = "0"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "procaudit",
            "lab",
            "up",
            "--profiles",
            "ready,dc",
            "--count",
            "3",
            "--fault",
            "lab-dc-*=refuse",
            "--subnet",
            subnet,
            "-i",
            str(inventory),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for _ in range(200):
            if inventory.exists():
                break
            time.sleep(0.05)
        assert inventory.exists(), proc.stderr.read() if proc.poll() is not None else "no inventory"
        text = inventory.read_text()
        assert "Lab-Up-Secret-1" not in text and "lab_profile: ready" in text
        result = run_cli("ping", "-i", str(inventory), "-f", "json", env=env)
        statuses = {h["host"]: h["status"] for h in json.loads(result.stdout)["hosts"]}
        assert statuses == {"lab-ready-01": "OK", "lab-ready-02": "OK", "lab-dc-01": "ERROR"}
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "Lab-Up-Secret-1" not in err
