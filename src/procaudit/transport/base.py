"""The transport seam: what a connector needs to know about a host, and what it offers."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from procaudit.remote import ScriptParams, ScriptResult, ScriptSpec

Scheme = Literal["https", "http"]
AuthMethod = Literal["negotiate", "kerberos", "ntlm", "credssp", "certificate"]


def option_problem(name: str, value: float) -> str | None:
    """What is wrong with a port or a timeout, or ``None``: one rule for inventories and the command line (NaN and
    infinity would switch deadlines off, or reach the socket layer as an OverflowError)."""
    if name.endswith("port"):
        return None if 0 < value < 65536 else "must be between 1 and 65535"
    if name.endswith("timeout"):
        return None if math.isfinite(value) and value > 0 else "must be a positive number of seconds"
    return None


AUTH_METHODS: tuple[AuthMethod, ...] = ("negotiate", "kerberos", "ntlm", "credssp", "certificate")

P = TypeVar("P", bound=ScriptParams)
R = TypeVar("R", bound=ScriptResult)


@dataclass(frozen=True)
class ConnectionOptions:
    """How to talk WinRM to one host. Defaults are the safe ones: HTTPS on 5986 with certificate validation."""

    scheme: Scheme = "https"
    port: int | None = None
    auth: AuthMethod = "negotiate"
    cert_validation: bool = True
    ca_bundle: Path | None = None
    connect_timeout: float = 10.0
    operation_timeout: int = 20
    script_timeout: float = 120.0
    proxy: str | None = None
    kerberos_service: str = "HTTP"
    kerberos_hostname: str | None = None
    certificate_pem: Path | None = None
    certificate_key_pem: Path | None = None

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (5986 if self.scheme == "https" else 5985)


@dataclass(frozen=True)
class Credentials:
    """A user name and password. ``repr`` never shows the password."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password='***')"

    __str__ = __repr__


@dataclass(frozen=True)
class HostTarget:
    """One host to connect to: its inventory name, the address to dial and how."""

    name: str
    address: str
    options: ConnectionOptions
    username: str | None = None
    vars: tuple[tuple[str, Any], ...] = ()

    def var(self, key: str, default: Any = None) -> Any:
        return dict(self.vars).get(key, default)

    @property
    def is_lab(self) -> bool:
        return self.var("lab_profile") is not None


class Connector(Protocol):
    """Runs shipped scripts on one host. Implementations keep one session per host for the whole run."""

    target: HostTarget

    def open(self) -> None:
        """Open the session now (authenticate, create the runspace pool); otherwise the first ``run`` does."""
        ...

    def run(
        self,
        spec: ScriptSpec[P, R],
        params: P,
        *,
        input: Iterable[Any] | None = None,
        timeout: float | None = None,
    ) -> R:
        """Run ``spec`` with ``params`` bound as PSRP parameters and return its validated JSON result.

        Raises a ``procaudit.errors.TransportError`` subclass on any failure.
        """
        ...

    def close(self) -> None: ...
