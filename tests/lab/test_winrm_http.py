"""The lean HTTP transport under pypsrp's WSMan, against the lab: the wire pypsrp's own transport speaks, and
every failure classified as before (TLS, credentials, deadline, dropped connection, cancellation)."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator

import pytest
from pypsrp.complex_objects import ApartmentState, HostInfo, Pipeline, PSThreadOptions, RemoteStreamOptions
from pypsrp.encryption import WinRMEncryption
from pypsrp.messages import CreatePipeline, Destination, InitRunspacePool, Message, SessionCapability
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan, _TransportHTTP

from procaudit.errors import AuthError, CancelledError, ConnectionLostError, DeadlineError, RemoteScriptError, TlsError
from procaudit.facts import GET_PROCAUDIT_FACTS, ProbeParams
from procaudit.lab.wsman import ScriptOutcome, ScriptRun
from procaudit.ping import GET_HOST_IDENTITY, NoParams
from procaudit.transport.base import Credentials
from procaudit.transport.psrp import PsrpConnector, _MemoSerializer, _plain_key, classify
from procaudit.transport.winrm_http import WinRMHttp, WireCut

from .conftest import LabHandle, start_lab


@pytest.fixture(scope="module")
def http_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """HTTP with message encryption: healthy hosts, a slow one, one that cuts responses, one that rejects all."""
    yield from start_lab(
        tmp_path_factory.mktemp("lean-http"),
        ["ready", "ready", "small-log", "fresh-2019", "workstation"],
        ["lab-small-log-01=slow:1500", "lab-fresh-2019-01=drop", "lab-workstation-01=auth-fail"],
        transport="http",
    )


@pytest.fixture(scope="module")
def https_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    yield from start_lab(
        tmp_path_factory.mktemp("lean-https"),
        ["ready", "dc", "rds", "workstation"],
        ["lab-dc-01=tls-mismatch", "lab-rds-01=tls-expired", "lab-workstation-01=tls-untrusted"],
    )


def _stock_identity(lab: LabHandle, name: str) -> None:
    """The identity script with pypsrp's own transport (requests), as the connector runs it: no Terminate."""
    target = lab.target(name)
    opts = target.options
    wsman = WSMan(
        target.address,
        port=opts.effective_port,
        ssl=opts.scheme == "https",
        auth=opts.auth,
        username=lab.credentials.username,
        password=lab.credentials.password,
        cert_validation=str(opts.ca_bundle) if opts.ca_bundle else True,
        no_proxy=True,
    )
    assert isinstance(wsman.transport, _TransportHTTP)
    with wsman, RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_script(GET_HOST_IDENTITY.text)
        ps.invoke()
        assert not ps.had_errors


@pytest.mark.parametrize("which", ["http_lab", "https_lab"])
def test_the_wire_is_pypsrps(which: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same logon legs around the same WSMan actions, on one connection, with one logon, as with requests."""
    lab: LabHandle = request.getfixturevalue(which)
    endpoint = lab.endpoint("lab-ready-01")
    actions: list[str] = []
    invoke = WSMan.invoke

    def recording(self: WSMan, action: str, *args: object, **kwargs: object) -> object:
        actions.append(action.rsplit("/", 1)[-1])
        return invoke(self, action, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(WSMan, "invoke", recording)
    endpoint.stats.reset()
    _stock_identity(lab, "lab-ready-01")
    stock, stock_actions = dataclasses.replace(endpoint.stats, logons=endpoint.stats.logons.copy()), list(actions)
    stock_encrypted = endpoint.stats.encrypted.copy()
    endpoint.stats.reset()
    actions.clear()
    with lab.connector("lab-ready-01") as conn:
        conn.open()
        assert isinstance(conn._wsman and conn._wsman.transport, WinRMHttp)
        assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-01"
    lean = endpoint.stats
    # A Receive more or less depends on when the script finished; the logon legs do not.
    legs = 3 if which == "http_lab" else 2  # HTTP: an empty POST, then NTLM's two legs; HTTPS: the legs resend
    assert lean.requests - len(actions) == stock.requests - len(stock_actions) == legs
    assert [a for a in actions if a != "Receive"] == [a for a in stock_actions if a != "Receive"]
    assert [a for a in actions if a != "Receive"] == ["Create", "Command", "Delete"]
    assert (lean.connections, lean.pipelines) == (stock.connections, stock.pipelines) == (1, 1)
    assert lean.logons == stock.logons == {"ntlm": 1}
    if which == "http_lab":  # every envelope encrypted, as with requests
        assert lean.encrypted[WinRMEncryption.SPNEGO] == len(actions)
        assert stock_encrypted[WinRMEncryption.SPNEGO] == len(stock_actions)
    else:
        assert not lean.encrypted and not stock_encrypted  # TLS protects the bodies


@pytest.mark.parametrize(
    ("overrides", "lean"),
    [
        ({}, True),
        ({"auth": "negotiate"}, True),
        ({"auth": "kerberos"}, True),
        ({"auth": "credssp"}, False),
        ({"proxy": "http://127.0.0.1:9"}, False),
    ],
)
def test_which_transport_serves_which_settings(http_lab: LabHandle, overrides: dict[str, str], lean: bool) -> None:
    target = http_lab.target("lab-ready-01")
    target = dataclasses.replace(target, options=dataclasses.replace(target.options, **overrides))  # type: ignore[arg-type]
    wsman = PsrpConnector(target, http_lab.credentials)._make_wsman()
    assert isinstance(wsman.transport, WinRMHttp) is lean
    assert lean or isinstance(wsman.transport, _TransportHTTP)
    wsman.close()


def test_wrong_password_over_message_encryption(http_lab: LabHandle) -> None:
    bad = Credentials(http_lab.credentials.username, "not-the-password")
    with (
        pytest.raises(AuthError, match="rejected the credentials") as info,
        http_lab.connector("lab-ready-01", bad) as conn,
    ):
        conn.open()
    assert "not-the-password" not in str(info.value)


def test_host_that_rejects_every_logon(http_lab: LabHandle) -> None:
    with pytest.raises(AuthError, match="rejected the credentials"), http_lab.connector("lab-workstation-01") as c:
        c.open()


def test_an_exchange_that_outlasts_the_deadline_is_a_timeout(http_lab: LabHandle) -> None:
    with (
        pytest.raises(DeadlineError, match="did not answer within the deadline") as info,
        http_lab.connector("lab-small-log-01", script_timeout=0.5) as conn,
    ):
        conn.open()
    assert info.value.kind == "timeout"


def test_a_response_cut_in_the_middle_is_dropped(http_lab: LabHandle) -> None:
    with (
        pytest.raises(ConnectionLostError, match="cut mid-response"),
        http_lab.connector("lab-fresh-2019-01") as conn,
    ):
        conn.run(GET_HOST_IDENTITY, NoParams())


def test_a_cut_before_any_answer_on_the_http_listener_is_dropped_not_tls(http_lab: LabHandle) -> None:
    cut = WireCut("closed", mid_response=False)
    cut.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    assert isinstance(classify(cut, http_lab.target("lab-ready-01"), "connecting"), ConnectionLostError)


def test_cancel_while_the_script_runs(http_lab: LabHandle) -> None:
    """cancel() from another thread: the run stops at its next exchange, and close() still deletes the shell."""
    endpoint = http_lab.endpoint("lab-ready-02")
    original = endpoint.executor
    conn = http_lab.connector("lab-ready-02")
    started = threading.Event()

    def cancel_then_run(run: ScriptRun) -> ScriptOutcome:
        started.set()
        conn.cancel()  # as fanout does on Ctrl-C, while the pipeline is in flight
        return original(run)

    endpoint.executor = cancel_then_run
    try:
        with pytest.raises(CancelledError, match="interrupted"):
            conn.run(GET_HOST_IDENTITY, NoParams())
    finally:
        endpoint.executor = original
        conn.close()
    assert started.is_set()
    assert endpoint.shells.shells == {}  # the Delete still went out after the cancel


def test_a_keep_alive_connection_the_host_closed_is_reopened_with_a_new_logon(http_lab: LabHandle) -> None:
    endpoint = http_lab.endpoint("lab-ready-02")
    endpoint.stats.reset()
    with http_lab.connector("lab-ready-02") as conn:
        assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-02"
        server = http_lab.lab.server
        with server._conn_lock:
            for sock in list(server._connections):
                if sock.getsockname()[0] == endpoint.address:
                    sock.shutdown(socket.SHUT_RDWR)  # the host ends the idle connection (HTTP.sys idle timeout)
        assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-02"
    assert endpoint.stats.connections == 2 and endpoint.stats.logons == {"ntlm": 2}
    assert endpoint.stats.pipelines == 2


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("lab-dc-01", "does not name"),
        ("lab-rds-01", "expired on"),
        ("lab-workstation-01", "is not trusted"),
    ],
)
def test_certificate_failures_through_the_lean_transport(https_lab: LabHandle, host: str, message: str) -> None:
    conn = https_lab.connector(host)
    with pytest.raises(TlsError, match=message):
        conn.open()
    assert isinstance(conn._dead[0][1].transport, WinRMHttp)
    conn.close()


def test_ca_bundle_and_no_verify_through_the_lean_transport(https_lab: LabHandle) -> None:
    target = https_lab.target("lab-ready-01")
    bare = dataclasses.replace(target, options=dataclasses.replace(target.options, ca_bundle=None))
    with pytest.raises(TlsError, match="is not trusted"), PsrpConnector(bare, https_lab.credentials) as conn:
        conn.open()
    unchecked = dataclasses.replace(bare, options=dataclasses.replace(bare.options, cert_validation=False))
    with PsrpConnector(unchecked, https_lab.credentials) as conn:
        assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-01"
    with PsrpConnector(target, https_lab.credentials) as conn:
        assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-01"


# -- pypsrp's CLIXML of repeated messages, kept once per process ----------------------------------------------
def test_each_run_binds_its_own_parameters_when_renderings_are_kept(http_lab: LabHandle) -> None:
    """Runs with the same script alternate parameters on two hosts: each pipeline carries its own values."""
    seen: list[tuple[str, dict[str, object]]] = []
    originals = {}
    for name in ("lab-ready-01", "lab-ready-02"):
        endpoint = http_lab.endpoint(name)
        originals[name] = endpoint.executor

        def record(run: ScriptRun, name: str = name) -> ScriptOutcome:
            seen.append((name, run.parameters))
            return originals[name](run)

        endpoint.executor = record
    first = ProbeParams(window_hours=3, max_events=7, policy_names=("a",))
    second = ProbeParams(window_hours=3, max_events=8, policy_names=("a",))
    try:
        with http_lab.connector("lab-ready-01") as one, http_lab.connector("lab-ready-02") as two:
            for conn, params in ((one, first), (two, first), (one, second), (two, second), (one, first)):
                conn.run(GET_PROCAUDIT_FACTS, params)
    finally:
        for name, original in originals.items():
            http_lab.endpoint(name).executor = original
    expected = [{"WindowHours": 3, "MaxEvents": n, "PolicyNames": ["a"]} for n in (7, 7, 8, 8, 7)]
    assert [p for _, p in seen] == expected
    assert [n for n, _ in seen] == ["lab-ready-01", "lab-ready-02", "lab-ready-01", "lab-ready-02", "lab-ready-01"]


def test_kept_renderings_are_pypsrps_own_bytes() -> None:
    """What the memo hands Message.pack is byte for byte what pypsrp renders, for each kept message type."""
    wsman = WSMan("127.0.0.1", ssl=False, auth="ntlm", username="u", password="p")
    pool = RunspacePool(wsman)
    plain = RunspacePool(wsman)
    _MemoSerializer.install(pool)
    pool.protocol_version = "2.3"  # what an opened pool learns from the host's SessionCapability
    ps = PowerShell(pool)
    ps.add_script(GET_HOST_IDENTITY.text).add_parameters({"Name": "x", "Count": 2, "Flags": [True, None]})
    pipeline = CreatePipeline(
        True,
        ApartmentState(value=2),
        RemoteStreamOptions(value=15),
        False,
        HostInfo(host=None),
        Pipeline(is_nested=False, cmds=ps.commands, history=None, redirect_err_to_out=False),
        False,
    )
    messages = [
        SessionCapability("2.3", "2.0", "1.1.0.1"),
        InitRunspacePool(1, 1, PSThreadOptions(value=0), ApartmentState(value=2), HostInfo(host=None), None),
    ]
    for message in messages:
        expected = Message(Destination.SERVER, pool.id, None, message, plain._serializer).pack()
        for _ in range(2):  # rendered, then served from the memo
            assert Message(Destination.SERVER, pool.id, None, message, pool._serializer).pack() == expected
    expected = Message(Destination.SERVER, pool.id, ps.id, pipeline, plain._serializer).pack()
    with _MemoSerializer.pipeline(pool, GET_HOST_IDENTITY.text, {"Name": "x", "Count": 2, "Flags": [True, None]}):
        for _ in range(2):
            assert Message(Destination.SERVER, pool.id, ps.id, pipeline, pool._serializer).pack() == expected
    assert any(key[0] == "CreatePipeline" for key in _MemoSerializer._memo)


def test_parameters_that_are_not_plain_data_are_never_kept() -> None:
    assert _plain_key({"A": 1, "B": True}) != _plain_key({"A": True, "B": 1})  # types are part of the key
    assert _plain_key({"A": [1, "x"], "B": {"k": None}}) is not None
    assert _plain_key({"A": object()}) is None


def test_replies_parsed_once_keep_each_pipelines_own_state(http_lab: LabHandle) -> None:
    """A failed pipeline's state (with its error) and a completed one's are different texts: never confused."""
    endpoint = http_lab.endpoint("lab-ready-02")
    original = endpoint.executor
    endpoint.executor = lambda run: ScriptOutcome(failure="Cannot find path 'HKLM:\\nope'")
    try:
        with pytest.raises(RemoteScriptError, match="Cannot find path"), http_lab.connector("lab-ready-02") as conn:
            conn.run(GET_HOST_IDENTITY, NoParams())
    finally:
        endpoint.executor = original
    for _ in range(2):
        with http_lab.connector("lab-ready-02") as conn:
            assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-02"
    kept = {kind for kind, _text in _MemoSerializer._replies}
    assert {"SessionCapability", "ApplicationPrivateData", "RunspacePoolStateMessage", "PipelineState"} <= kept
