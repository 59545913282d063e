"""tests/live/ checks on a real host what the lab models. Run here against the lab, it must pass as well: a
live test that the lab fails is a lab that has drifted from what we expect of Windows (or a wrong test)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_the_live_suite_passes_against_the_lab(tmp_path: Path) -> None:
    inventory = tmp_path / "lab.yml"
    env = {**os.environ, "PROCAUDIT_USER": "LAB\\live", "PROCAUDIT_PASSWORD": "Live-Suite-Only-1"}
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "procaudit",
            "lab",
            "up",
            "--profiles",
            "ready,dc,scom",
            "--subnet",
            "0",
            "-i",
            str(inventory),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(400):
            if inventory.exists() or lab.poll() is not None:
                break
            time.sleep(0.05)
        assert inventory.exists(), lab.stderr.read() if lab.stderr else "no inventory"
        document = yaml.safe_load(inventory.read_text())
        address = {
            name: body["address"] for group in document["groups"].values() for name, body in group["hosts"].items()
        }
        live_env = {
            **env,
            "PROCAUDIT_LIVE_HOST": address["lab-ready-01"],
            "PROCAUDIT_LIVE_AUTH": "ntlm",
            "PROCAUDIT_LIVE_CA_BUNDLE": document["vars"]["ca_bundle"],
            "PROCAUDIT_LIVE_DC": address["lab-dc-01"],
            "PROCAUDIT_LIVE_SCOM": address["lab-scom-01"],
            "PROCAUDIT_LIVE_DEPLOY": "1",
        }
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/live"],
            cwd=REPO,
            env=live_env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        lab.send_signal(signal.SIGTERM)
        lab.wait(timeout=30)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in summary and "failed" not in summary, summary
