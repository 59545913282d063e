"""Fan-out against the lab: Ctrl-C cancels the hosts in flight, a second Ctrl-C gives up waiting."""

from __future__ import annotations

import pytest

from procaudit.fanout import HostOutcome, run_on_hosts
from procaudit.ping import GET_HOST_IDENTITY, NoParams
from procaudit.transport.base import Connector, HostTarget
from procaudit.transport.psrp import PsrpConnector

from .conftest import LabHandle

HOSTS = ["lab-ready-01", "lab-cmdline-off-01"]  # healthy, and one whose scripts hang until stopped


def targets(lab: LabHandle) -> list[HostTarget]:
    # A deadline far beyond the test: only cancellation can end the hung host's script.
    return [lab.target(name, script_timeout=600) for name in HOSTS]


def connect(lab: LabHandle):  # type: ignore[no-untyped-def]
    return lambda target: PsrpConnector(target, lab.credentials)


def identity(connector: Connector) -> str:
    return connector.run(GET_HOST_IDENTITY, NoParams()).os_build


def test_ctrl_c_cancels_the_hosts_in_flight(fault_lab: LabHandle) -> None:
    seen: list[str] = []

    def on_done(outcome: HostOutcome[str]) -> None:
        seen.append(outcome.target.name)
        if len(seen) == 1:
            raise KeyboardInterrupt  # Ctrl-C while the hung host is still in flight

    result = run_on_hosts(targets(fault_lab), identity, connect(fault_lab), workers=2, on_done=on_done)
    assert result.interrupted
    healthy, cancelled = result.outcomes
    assert healthy.error is None and healthy.value == fault_lab.lab.host("lab-ready-01").os.build
    assert cancelled.error is not None and cancelled.error.kind == "cancelled"
    assert "interrupted" in str(cancelled.error)


def test_a_second_ctrl_c_stops_waiting(fault_lab: LabHandle) -> None:
    def on_done(_outcome: HostOutcome[str]) -> None:
        raise KeyboardInterrupt  # every completion: the second one is a second Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        run_on_hosts(targets(fault_lab), identity, connect(fault_lab), workers=2, on_done=on_done)
