"""The real pypsrp client against the lab: every error class, the deadline, the script contract."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pytest
from pydantic import ConfigDict
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool

from procaudit.errors import (
    AuthError,
    ConnectionLostError,
    ContractError,
    DeadlineError,
    ProtocolError,
    RemoteScriptError,
    UnreachableError,
)
from procaudit.facts import GET_PROCAUDIT_FACTS, ProbeParams
from procaudit.lab.wsman import FAULT_UNSUPPORTED, ScriptOutcome, ScriptRun, WSManFault
from procaudit.ping import GET_HOST_IDENTITY, NoParams
from procaudit.remote import ScriptSpec
from procaudit.transport.base import Credentials
from procaudit.transport.psrp import PsrpConnector

from .conftest import LabHandle


def test_identity_round_trip_reuses_one_session(fault_lab: LabHandle) -> None:
    endpoint = fault_lab.endpoint("lab-ready-01")
    endpoint.stats.reset()
    with fault_lab.connector("lab-ready-01") as conn:
        first = conn.run(GET_HOST_IDENTITY, NoParams())
        second = conn.run(GET_HOST_IDENTITY, NoParams())
    host = fault_lab.lab.host("lab-ready-01")
    assert first == second
    assert (first.os_version, first.os_build, first.product_type) == (host.os.version, host.os.build, 3)
    assert first.ps_version == host.os.ps_version
    assert endpoint.stats.connections == 1 and endpoint.stats.pipelines == 2


def test_wrong_password_is_an_auth_error(fault_lab: LabHandle) -> None:
    bad = Credentials(fault_lab.credentials.username, "not-the-password")
    with (
        pytest.raises(AuthError, match="rejected the credentials") as info,
        fault_lab.connector("lab-ready-01", bad) as c,
    ):
        c.run(GET_HOST_IDENTITY, NoParams())
    assert "not-the-password" not in str(info.value)


def test_host_that_rejects_everyone(fault_lab: LabHandle) -> None:
    with pytest.raises(AuthError), fault_lab.connector("lab-workstation-01") as conn:
        conn.open()


def test_refused_connection(fault_lab: LabHandle) -> None:
    with pytest.raises(UnreachableError, match="connection refused"), fault_lab.connector("lab-rds-01") as conn:
        conn.open()


def test_host_that_is_down_times_out_on_connect(fault_lab: LabHandle) -> None:
    with (
        pytest.raises(UnreachableError, match=r"no answer .* within 1s"),
        fault_lab.connector("lab-dc-01", connect_timeout=1) as conn,
    ):
        conn.open()


def test_unknown_host_name(fault_lab: LabHandle) -> None:
    target = dataclasses.replace(fault_lab.target("lab-ready-01"), address="no-such-host.invalid")
    with pytest.raises(UnreachableError, match="cannot resolve"), PsrpConnector(target, fault_lab.credentials) as c:
        c.open()


def test_hung_script_hits_the_deadline_and_is_stopped(fault_lab: LabHandle) -> None:
    endpoint = fault_lab.endpoint("lab-cmdline-off-01")
    endpoint.stats.reset()
    with pytest.raises(DeadlineError, match="pipeline was stopped"), fault_lab.connector("lab-cmdline-off-01") as c:
        c.run(GET_HOST_IDENTITY, NoParams(), timeout=2)
    assert endpoint.stats.stops == 1


def test_dropped_connection(fault_lab: LabHandle) -> None:
    with pytest.raises(ConnectionLostError, match="cut mid-response"), fault_lab.connector("lab-fresh-2019-01") as c:
        c.run(GET_HOST_IDENTITY, NoParams())


def test_slow_host_still_answers(fault_lab: LabHandle) -> None:
    with fault_lab.connector("lab-small-log-01") as conn:
        assert conn.run(GET_HOST_IDENTITY, NoParams()).os_build == "17763"


def test_lab_refuses_script_text_that_is_not_shipped(fault_lab: LabHandle) -> None:
    tampered: ScriptSpec[NoParams, object] = ScriptSpec(
        "Get-HostIdentity", "checks", NoParams, GET_HOST_IDENTITY.result
    )
    tampered.__dict__["text"] = GET_HOST_IDENTITY.text.replace("ComputerName =", "ComputerName  =")
    with (
        pytest.raises(RemoteScriptError, match="not byte-identical to any shipped"),
        fault_lab.connector("lab-ready-02") as conn,
    ):
        conn.run(tampered, NoParams())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "error", "message"),
    [
        (
            ScriptOutcome(output=['{"ComputerName":"X"}'], errors=["Access is denied"]),
            RemoteScriptError,
            "reported 1 error.*Access is denied",
        ),
        (ScriptOutcome(failure="Cannot find path 'HKLM:\\nope'"), RemoteScriptError, "failed on the host: Cannot find"),
        (ScriptOutcome(output=["{}", "{}"]), ContractError, "exactly one JSON document; it wrote 2"),
        (ScriptOutcome(output=["not json"]), ContractError, "breaks its contract"),
        (ScriptOutcome(output=['{"ComputerName":"X"}']), ContractError, "breaks its contract"),
    ],
)
def test_errors_and_contract_violations(
    fault_lab: LabHandle, outcome: ScriptOutcome, error: type[Exception], message: str
) -> None:
    endpoint = fault_lab.endpoint("lab-ready-02")
    original = endpoint.executor

    def misbehave(run: ScriptRun) -> ScriptOutcome:
        return outcome

    endpoint.executor = misbehave
    try:
        with pytest.raises(error, match=message), fault_lab.connector("lab-ready-02") as conn:
            conn.run(GET_HOST_IDENTITY, NoParams())
    finally:
        endpoint.executor = original


def test_parameters_arrive_typed_and_never_as_code(fault_lab: LabHandle) -> None:
    seen: list[dict[str, object]] = []
    endpoint = fault_lab.endpoint("lab-ready-02")
    original = endpoint.executor

    def record(run: ScriptRun) -> ScriptOutcome:
        seen.append(run.parameters)
        return original(run)

    hostile = "'; Remove-Item C:\\ -Recurse; '"
    endpoint.executor = record
    try:
        with fault_lab.connector("lab-ready-02") as conn:
            conn.run(GET_PROCAUDIT_FACTS, ProbeParams(window_hours=3, max_events=7, policy_names=(hostile, "x")))
    finally:
        endpoint.executor = original
    assert seen == [{"WindowHours": 3, "MaxEvents": 7, "PolicyNames": [hostile, "x"]}]


def test_lab_refuses_a_parameter_the_script_does_not_declare(fault_lab: LabHandle) -> None:
    class Params(NoParams):
        model_config = ConfigDict(extra="allow", frozen=True)

    with (
        pytest.raises(RemoteScriptError, match=r"Get-HostIdentity\.ps1: A parameter cannot be found .* name 'Path'"),
        fault_lab.connector("lab-ready-02") as conn,
    ):
        conn.run(GET_HOST_IDENTITY, Params(Path="C:\\"))  # type: ignore[call-arg]


def _invoke(lab: LabHandle, build: Callable[[PowerShell], object]) -> str:
    """Run a hand-built pipeline with pypsrp itself (procaudit's connector only ever sends one script)."""
    with lab.connector("lab-ready-02") as conn:
        conn.open()
        assert conn._pool is not None
        ps = PowerShell(conn._pool)
        build(ps)
        ps.invoke()
        assert ps.state == PSInvocationState.FAILED and not ps.output
        return "; ".join(str(e) for e in ps.streams.error)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda ps: ps.add_script(GET_HOST_IDENTITY.text).add_cmdlet("Out-String"), "pipeline of 2 commands"),
        (
            lambda ps: ps.add_script(GET_HOST_IDENTITY.text).add_statement().add_script(GET_HOST_IDENTITY.text),
            "pipeline of 2 commands",
        ),
        (lambda ps: ps.add_cmdlet("Get-Process"), "refused the command 'Get-Process'.*AddCommand"),
        (lambda ps: ps.add_script(GET_HOST_IDENTITY.text).add_argument("x"), "positional argument"),
        (
            lambda ps: (
                ps.add_script(GET_PROCAUDIT_FACTS.text).add_parameter("MaxEvents", 1).add_parameter("maxevents", 2)
            ),
            "parameter 'MaxEvents' is specified more than once",
        ),
    ],
)
def test_lab_refuses_anything_but_one_shipped_script(
    fault_lab: LabHandle, build: Callable[[PowerShell], object], message: str
) -> None:
    endpoint = fault_lab.endpoint("lab-ready-02")
    endpoint.stats.reset()
    assert re.search(message, _invoke(fault_lab, build))
    assert endpoint.stats.pipelines == 0  # nothing reached the host model


def test_a_create_with_a_shell_id_in_use_is_refused(fault_lab: LabHandle) -> None:
    with fault_lab.connector("lab-ready-02") as conn:
        conn.open()
        assert conn._pool is not None and conn._wsman is not None
        twin = RunspacePool(conn._wsman)
        twin.id = twin.shell.id = conn._pool.id  # the ShellId pypsrp sends in its Create
        with pytest.raises(WSManFaultError, match="already exists"):
            twin.open()
        assert conn.run(GET_HOST_IDENTITY, NoParams()).os_build  # the first shell is untouched


def test_a_shell_whose_opening_failed_is_deleted_on_close(fault_lab: LabHandle) -> None:
    shells = fault_lab.endpoint("lab-ready-02").shells
    original = shells._receive

    def refuse_pool_receive(shell, body, timeout, max_envelope):  # type: ignore[no-untyped-def]
        raise WSManFault(FAULT_UNSUPPORTED, "the lab refuses this Receive")  # after the Create succeeded

    shells._receive = refuse_pool_receive  # type: ignore[method-assign]
    try:
        conn = fault_lab.connector("lab-ready-02")
        with pytest.raises(ProtocolError, match="WinRM fault"):
            conn.open()
        assert len(shells.shells) == 1  # the host holds the half-opened shell
    finally:
        shells._receive = original  # type: ignore[method-assign]
    conn.close()
    assert shells.shells == {}  # close() said goodbye to it
