"""``procaudit ping``: can we reach, authenticate to and run PowerShell on each host?"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, Field

from procaudit.fanout import ConnectorFactory, HostOutcome, run_on_hosts
from procaudit.remote import ScriptParams, ScriptResult, ScriptSpec
from procaudit.transport.base import Connector, HostTarget


class NoParams(ScriptParams):
    pass


class HostIdentity(ScriptResult):
    computer_name: str
    ps_version: str = Field(alias="PSVersion")
    os_caption: str = Field(alias="OSCaption")
    os_version: str = Field(alias="OSVersion")
    os_build: str = Field(alias="OSBuild")
    product_type: int


GET_HOST_IDENTITY = ScriptSpec("Get-HostIdentity", "checks", NoParams, HostIdentity)


class PingError(BaseModel):
    kind: str
    message: str


class PingHost(BaseModel):
    host: str
    address: str
    status: str  # OK | ERROR
    reachable: bool
    authenticated: bool
    ps_version: str | None = None
    os_caption: str | None = None
    os_version: str | None = None
    os_build: str | None = None
    connect_ms: float | None = None
    rtt_ms: float | None = None
    elapsed_ms: float | None = None  # until the host was done: answered, or its failure classified
    error: PingError | None = None
    lab: bool = False


class PingReport(BaseModel):
    hosts: list[PingHost]
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return sum(1 for h in self.hosts if h.status != "OK")


class _Timed(BaseModel):
    identity: HostIdentity
    connect_ms: float
    rtt_ms: float


def _ping_one(connector: Connector) -> _Timed:
    # One deadline (script_timeout) for the whole ping of a host: connecting, authenticating and the script.
    budget = connector.target.options.script_timeout
    started = time.perf_counter()
    connector.open()
    opened = time.perf_counter()
    identity = connector.run(GET_HOST_IDENTITY, NoParams(), timeout=max(budget - (opened - started), 0.001))
    done = time.perf_counter()
    return _Timed(
        identity=identity, connect_ms=round((opened - started) * 1000, 1), rtt_ms=round((done - opened) * 1000, 1)
    )


def _to_host(outcome: HostOutcome[_Timed]) -> PingHost:
    target = outcome.target
    if outcome.value is not None:
        ident = outcome.value.identity
        return PingHost(
            host=target.name,
            address=target.address,
            lab=target.is_lab,
            status="OK",
            reachable=True,
            authenticated=True,
            ps_version=ident.ps_version,
            os_caption=ident.os_caption,
            os_version=ident.os_version,
            os_build=ident.os_build,
            connect_ms=outcome.value.connect_ms,
            rtt_ms=outcome.value.rtt_ms,
            elapsed_ms=round(outcome.elapsed * 1000, 1),
        )
    error = outcome.error
    assert error is not None
    kind = error.kind
    return PingHost(
        host=target.name,
        address=target.address,
        lab=target.is_lab,
        status="ERROR",
        reachable=kind not in ("unreachable", "tls", "cancelled"),
        authenticated=kind not in ("unreachable", "tls", "auth", "cancelled"),
        elapsed_ms=round(outcome.elapsed * 1000, 1),
        error=PingError(kind=kind, message=str(error)),
    )


def ping(
    targets: list[HostTarget],
    connect: ConnectorFactory,
    *,
    workers: int = 32,
    on_done: Callable[[HostOutcome[_Timed]], None] | None = None,
) -> PingReport:
    result = run_on_hosts(targets, _ping_one, connect, workers=workers, on_done=on_done)
    return PingReport(hosts=[_to_host(o) for o in result.outcomes], interrupted=result.interrupted)
