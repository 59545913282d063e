"""``deploy``'s exit codes as README's table and --help state them: 130 interrupted, 4 gate stop, 3 a host
unreachable or lost mid-change, 1 a change or verify FAILed / refused / rolled back, 0 done."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from procaudit.rollout.deploy import DeployReport, HostReport, HostStatus, host_report
from procaudit.rollout.journal import GateDecision, HostEntry, HostError, HostVerify, Journal, WaveEntry

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def verify(status: str) -> HostVerify:
    return HostVerify(status=status, reason="x", detail="x", at=NOW)


def report(*hosts: HostReport, interrupted: bool = False, stopped: bool = False) -> DeployReport:
    gate = GateDecision(failed=1, total=1, max_fail_percent=0, stop=True, reason="r") if stopped else None
    return DeployReport(
        generated_at=NOW,
        strategy="direct",
        check=False,
        lab=True,
        hosts=list(hosts),
        waves=[],
        stopped=gate,
        interrupted=interrupted,
    )


def host(status: HostStatus, **extra: object) -> HostReport:
    return HostReport(host="h", status=status, wave=1, state="x", **extra)  # type: ignore[arg-type]


OK = host("OK", verify=verify("PASS"))


@pytest.mark.parametrize(
    ("hosts", "options", "code"),
    [
        ((OK,), {}, 0),
        ((OK, host("OK", verify=verify("EXPECTED_FAIL"))), {}, 0),
        ((OK, host("FAILED", verify=verify("FAIL"))), {}, 1),
        ((OK, host("FAILED", error=HostError(at=NOW, state="applied", kind="script", message="m"))), {}, 1),
        ((OK, host("REFUSED")), {}, 1),
        ((OK, host("ROLLED_BACK")), {}, 1),
        ((OK, host("FAILED", verify=verify("ERROR"))), {}, 3),
        ((OK, host("FAILED", error=HostError(at=NOW, state="applying", kind="dropped", message="m"))), {}, 3),
        ((OK, host("ERROR")), {}, 3),
        ((OK, host("ERROR")), {"stopped": True}, 4),
        ((OK, host("ERROR")), {"stopped": True, "interrupted": True}, 130),
    ],
)
def test_deploy_exit_codes(hosts: tuple[HostReport, ...], options: dict[str, bool], code: int) -> None:
    assert report(*hosts, **options).exit_code == code


def test_a_host_a_rollback_undid_is_reported_rolled_back_not_failed() -> None:
    journal = Journal(
        plan_sha256="0" * 64,
        strategy="direct",
        waves=[WaveEntry(index=1, name="w", hosts=["h"], soak_seconds=0, max_fail_percent=0, state="rolled_back")],
        hosts={"h": HostEntry(host="h", wave=1, state="rolled_back")},
    )
    assert host_report(journal, "h", None).status == "ROLLED_BACK"
