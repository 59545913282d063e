"""`procaudit verify --scom`: the marker's 4688 on each host, then its canary alert on the SCOM server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.lab.conftest import LabHandle, start_lab
from tests.lab.test_cli import creds, run_cli


@pytest.fixture(scope="module")
def scom_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    yield from start_lab(tmp_path_factory.mktemp("verify-scom"), ["ready", "fresh-2019", "scom"])


def _verify(handle: LabHandle, *extra: str) -> tuple[int, dict[str, dict[str, object]]]:
    result = run_cli(
        "verify",
        "-i",
        str(handle.inventory),
        "--timeout",
        "2",
        "--scom",
        "lab-scom-01",
        "--scom-timeout",
        "1",
        "-f",
        "json",
        *extra,
        env=creds(handle),
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, {h["host"]: h for h in json.loads(result.stdout)["hosts"]}


def test_canary_alert_missing_until_the_pack_is_installed_then_confirmed(scom_lab: LabHandle) -> None:
    code, hosts = _verify(scom_lab, "--limit", "lab-ready-*")
    assert code == 1
    assert hosts["lab-ready-01"]["status"] == "PASS"
    assert hosts["lab-ready-01"]["scom"]["status"] == "FAIL"

    pushed = run_cli("mp", "push", "-i", str(scom_lab.inventory), "--server", "lab-scom-01", env=creds(scom_lab))
    assert pushed.returncode == 0, pushed.stderr

    code, hosts = _verify(scom_lab, "--limit", "lab-ready-*")
    assert code == 0
    assert (
        hosts["lab-ready-01"]["scom"]["status"] == "PASS" and hosts["lab-ready-01"]["scom"]["server"] == "lab-scom-01"
    )
    assert set(hosts) == {"lab-ready-01"}  # the server is reached without being selected


def test_hosts_without_their_4688_are_not_looked_up_in_scom(scom_lab: LabHandle) -> None:
    code, hosts = _verify(scom_lab, "--limit", "lab-fresh-*")
    assert code == 1
    assert hosts["lab-fresh-2019-01"]["reason"] == "no_event" and hosts["lab-fresh-2019-01"]["scom"] is None


def test_scom_server_must_name_one_inventory_host(scom_lab: LabHandle) -> None:
    result = run_cli("verify", "-i", str(scom_lab.inventory), "--scom", "lab-*", env=creds(scom_lab))
    assert result.returncode == 2 and "--scom 'lab-*' matches 3 inventory hosts" in result.stderr
