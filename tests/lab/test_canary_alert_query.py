"""Get-ScomCanaryAlert against the lab's SCOM server: alerts count only from -Since on, and the nonce is
compared case-sensitively (PowerShell's ValidatePattern alone would accept upper-case hex)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from procaudit.detections.scom import GET_CANARY_ALERT, AlertParams, canary_rule_name, find_canary_alert
from procaudit.errors import TransportError
from tests.lab.conftest import LabHandle, start_lab
from tests.lab.test_cli import creds, run_cli


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabHandle, str]]:
    """A lab whose SCOM server has the pack and the canary alert of one verify run; with that run's nonce."""
    for handle in start_lab(tmp_path_factory.mktemp("canary-query"), ["ready", "scom"]):
        pushed = run_cli("mp", "push", "-i", str(handle.inventory), "--server", "lab-scom-01", env=creds(handle))
        assert pushed.returncode == 0, pushed.stderr
        args = ["verify", "-i", str(handle.inventory), "--limit", "lab-ready-*", "--timeout", "2", "-f", "json"]
        verified = run_cli(*args, "--scom", "lab-scom-01", "--scom-timeout", "1", env=creds(handle))
        assert verified.returncode == 0, verified.stderr
        (host,) = json.loads(verified.stdout)["hosts"]
        assert host["scom"]["status"] == "PASS"
        yield handle, host["nonce"]


def test_alerts_raised_before_since_do_not_count(confirmed: tuple[LabHandle, str]) -> None:
    handle, nonce = confirmed
    server = handle.connector("lab-scom-01")
    now = datetime.now(UTC)
    earlier = find_canary_alert(server, nonce, since=now - timedelta(hours=1), timeout=0)
    assert earlier.status == "PASS" and len(earlier.alerts) == 1
    later = find_canary_alert(server, nonce, since=now + timedelta(hours=1), timeout=0)
    assert later.status == "FAIL" and later.alerts == [] and later.rule_found


def test_the_nonce_is_compared_case_sensitively(confirmed: tuple[LabHandle, str]) -> None:
    handle, nonce = confirmed
    server = handle.connector("lab-scom-01")
    found = server.run(GET_CANARY_ALERT, AlertParams(rule_name=canary_rule_name(), nonce=nonce))
    assert len(found.alerts) == 1
    with pytest.raises(TransportError, match="lower-case hexadecimal") as caught:
        server.run(GET_CANARY_ALERT, AlertParams(rule_name=canary_rule_name(), nonce=nonce.upper()))
    assert caught.value.kind == "script"
