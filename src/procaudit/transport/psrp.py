"""``PsrpConnector``: the only module that talks to pypsrp (WSMan + RunspacePool + PowerShell).

One runspace pool per host, opened on first use and reused for every script of the run. Each script
runs under a wall-clock deadline: we poll the pipeline with short WSMan operation timeouts and stop it
(PSRP ctrl_c signal) when the deadline passes, because pypsrp itself waits forever for a running script.
Errors are mapped onto ``procaudit.errors``; non-terminating errors on the error stream count as failures
because every shipped script runs with ``$ErrorActionPreference = 'Stop'``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import requests
from pydantic import ValidationError
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan
from spnego._ntlm_raw.crypto import ntowfv1  # pyspnego's MD4-based NT hash (hashlib has no MD4 on OpenSSL 3)

from procaudit.errors import (
    AuthError,
    ConnectionLostError,
    ContractError,
    DeadlineError,
    ProtocolError,
    RemoteScriptError,
    TlsError,
    TransportError,
    UnreachableError,
)
from procaudit.remote import ScriptParams, ScriptResult, ScriptSpec
from procaudit.transport.base import Credentials, HostTarget

log = logging.getLogger(__name__)

P = TypeVar("P", bound=ScriptParams)
R = TypeVar("R", bound=ScriptResult)

_POLL_SECONDS = 5  # WSMan OperationTimeout per poll: how late we notice a passed deadline at worst
_READ_MARGIN = 15  # HTTP read timeout beyond the operation timeout, for slow links


class PsrpConnector:
    """Connector over PowerShell Remoting (WinRM). Not thread-safe: one per host per worker."""

    def __init__(self, target: HostTarget, credentials: Credentials | None) -> None:
        self.target = target
        self._credentials = credentials
        self._wsman: WSMan | None = None
        self._pool: RunspacePool | None = None
        self._finished: PowerShell | None = None

    # -- session -----------------------------------------------------------------------------------------
    def _make_wsman(self) -> WSMan:
        opts = self.target.options
        kwargs: dict[str, Any] = {
            "port": opts.effective_port,
            "ssl": opts.scheme == "https",
            "auth": opts.auth,
            "cert_validation": str(opts.ca_bundle) if opts.ca_bundle else opts.cert_validation,
            "connection_timeout": opts.connect_timeout,
            "operation_timeout": min(_POLL_SECONDS, opts.operation_timeout),
            "read_timeout": opts.operation_timeout + _READ_MARGIN,
            "reconnection_retries": 0,
            "reconnection_backoff": 0.5,
            "encryption": "auto",
        }
        if opts.proxy:
            kwargs["proxy"] = opts.proxy
        else:
            kwargs["no_proxy"] = True  # never let an ambient HTTPS_PROXY capture WinRM traffic
        if opts.auth in ("negotiate", "kerberos"):
            kwargs["negotiate_service"] = opts.kerberos_service
            if opts.kerberos_hostname:
                kwargs["negotiate_hostname_override"] = opts.kerberos_hostname
        if opts.auth == "certificate":
            kwargs["certificate_pem"] = str(opts.certificate_pem) if opts.certificate_pem else None
            kwargs["certificate_key_pem"] = str(opts.certificate_key_pem) if opts.certificate_key_pem else None
        elif self._credentials is not None:
            kwargs["username"] = self._credentials.username
            kwargs["password"] = self._credentials.password
            if opts.auth == "ntlm":
                # pyspnego accepts 'LM:NT' hashes in place of a password; hashing once per run instead of once per
                # host saves the pure-Python DES of the obsolete LM hash on every connection.
                kwargs["password"] = _ntlm_hashes(self._credentials.password)
        wsman = WSMan(self.target.address, **kwargs)
        # pypsrp builds its requests session lazily with trust_env on, which makes requests re-read every proxy
        # variable in os.environ for each exchange (about 10 ms of CPU per host). Proxies are decided above.
        session = wsman.transport._build_session()
        session.trust_env = False
        wsman.transport.session = session
        return wsman

    def open(self) -> None:
        self._open()

    def _open(self) -> RunspacePool:
        if self._pool is not None:
            return self._pool
        with self._classified("connecting"):
            self._wsman = self._make_wsman()
            pool = RunspacePool(self._wsman)
            pool.open()
        self._pool = pool
        return pool

    def close(self) -> None:
        """Close the runspace pool and the HTTP session; a failing close never hides the real error."""
        if self._pool is not None:
            with contextlib.suppress(Exception):
                self._pool.close()
        if self._wsman is not None:
            with contextlib.suppress(Exception):
                self._wsman.close()
        self._pool = None
        self._wsman = None
        self._finished = None

    def _abandon(self) -> None:
        """Close a session that just failed, spending at most a few seconds on courtesy to the host."""
        if self._wsman is not None:
            self._wsman.operation_timeout = 2
            self._wsman.transport.read_timeout = 5
            self._wsman.transport.connection_timeout = int(min(self.target.options.connect_timeout, 3))
        self.close()

    def __enter__(self) -> PsrpConnector:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- scripts -----------------------------------------------------------------------------------------
    def run(
        self,
        spec: ScriptSpec[P, R],
        params: P,
        *,
        input: Iterable[Any] | None = None,
        timeout: float | None = None,
    ) -> R:
        deadline = time.monotonic() + (timeout if timeout is not None else self.target.options.script_timeout)
        pool = self._open()
        self._release_finished()
        ps = PowerShell(pool)
        ps.add_script(spec.text)
        ps.add_parameters(params.to_psrp())
        try:
            with self._classified(f"running {spec.name}"):
                ps.begin_invoke(input=_as_generator(input) if input is not None else None)
                while ps.state == PSInvocationState.RUNNING:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self._stop(ps)
                        raise DeadlineError(
                            f"{spec.name} did not finish within its deadline; the pipeline was stopped",
                            hint="raise --script-timeout if the host is just slow",
                        )
                    self._poll(ps, remaining)
        finally:
            # Released before the next script, or by the pool's Delete: a separate Terminate for the last
            # pipeline would cost one more exchange per host for nothing.
            self._finished = ps
        return _result(spec, ps)

    def _release_finished(self) -> None:
        """Terminate the previous pipeline so long runs never hit MaxConcurrentCommandsPerShell."""
        if self._finished is not None:
            with contextlib.suppress(Exception):
                self._finished.close()
            self._finished = None

    def _poll(self, ps: PowerShell, remaining: float) -> None:
        assert self._wsman is not None
        # A short operation timeout per poll keeps us within the deadline; the HTTP read timeout leaves room
        # for link latency so a slow but live host is not mistaken for a dead one.
        operation = max(1, min(_POLL_SECONDS, int(remaining)))
        self._wsman.operation_timeout = operation
        self._wsman.transport.read_timeout = operation + _READ_MARGIN
        ps.poll_invoke()

    def _stop(self, ps: PowerShell) -> None:
        with contextlib.suppress(Exception):
            ps.stop()

    @contextlib.contextmanager
    def _classified(self, doing: str) -> Iterator[None]:
        try:
            yield
        except DeadlineError:
            raise
        except Exception as exc:
            error = exc if isinstance(exc, TransportError) else classify(exc, self.target, doing)
            log.debug("%s: %s failed: %r", self.target.name, doing, exc)
            self._abandon()  # the session is unusable after a transport failure; the next run reconnects
            if error is exc:
                raise
            raise error from exc


@functools.lru_cache(maxsize=8)
def _ntlm_hashes(password: str) -> str:
    return f"{'0' * 32}:{ntowfv1(password).hex()}"


def _as_generator(items: Iterable[Any]) -> Iterator[Any]:
    yield from items


def _result(spec: ScriptSpec[P, R], ps: PowerShell) -> R:
    errors = [str(e) for e in ps.streams.error]
    if ps.had_errors or ps.state == PSInvocationState.FAILED:
        detail = "; ".join(errors) or "the script failed without an error record"
        raise RemoteScriptError(f"{spec.name} failed on the host: {detail}")
    if errors:
        raise RemoteScriptError(f"{spec.name} reported {len(errors)} error(s): " + "; ".join(errors))
    outputs = [o for o in ps.output if not (isinstance(o, str) and not o.strip())]
    if len(outputs) != 1 or not isinstance(outputs[0], str):
        raise ContractError(f"{spec.name} must write exactly one JSON document; it wrote {len(outputs)} object(s)")
    try:
        document = json.loads(outputs[0])
        return spec.result.model_validate(document)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ContractError(f"{spec.name} wrote output that breaks its contract: {_short(exc)}") from exc


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


def classify(exc: BaseException, target: HostTarget, doing: str) -> TransportError:
    """Map a pypsrp / requests / spnego exception to one of procaudit's transport errors."""
    where = f"{target.address}:{target.options.effective_port}"
    scheme = target.options.scheme
    chain = list(_causes(exc))
    if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(c, ssl.SSLError) for c in chain):
        return _tls_error(exc, chain, where, target)
    if isinstance(exc, requests.exceptions.ConnectTimeout) or _has_socket_timeout_on_connect(chain):
        return UnreachableError(
            f"no answer from {where} within {target.options.connect_timeout:g}s while {doing}",
            hint="host down, wrong address, or a firewall dropping WinRM traffic",
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        name = " ".join(type(c).__name__ for c in chain)
        if "NameResolutionError" in name or any(isinstance(c, socket.gaierror) for c in chain):
            return UnreachableError(f"cannot resolve {target.address!r}", hint="check the name or DNS")
        if any(isinstance(c, ConnectionRefusedError) or getattr(c, "errno", None) == errno.ECONNREFUSED for c in chain):
            return UnreachableError(
                f"connection refused by {where}",
                hint=f"is the WinRM {scheme.upper()} listener enabled on port {target.options.effective_port}?",
            )
        if "NewConnectionError" in name:
            return UnreachableError(f"cannot connect to {where}: {_short(exc, 160)}")
        return ConnectionLostError(
            f"connection to {where} was cut while {doing}", hint="network drop or WinRM service restart; retry"
        )
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return ConnectionLostError(
            f"connection to {where} was cut mid-response while {doing}", hint="network drop or WinRM restart; retry"
        )
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return DeadlineError(f"{where} stopped answering while {doing}", hint="host overloaded or link dead")
    if isinstance(exc, AuthenticationError) or _is_spnego_error(exc):
        return _auth_error(exc, target, where)
    if isinstance(exc, WSManFaultError):
        if exc.code == 5:
            return AuthError(
                f"{where} denied access (WSMan fault 5)",
                hint="the account needs to be a local administrator or in Remote Management Users",
            )
        return ProtocolError(f"WinRM fault {exc.code} from {where} while {doing}: {exc.reason}")
    if isinstance(exc, WinRMTransportError):
        return ProtocolError(f"HTTP {exc.code} from {where} while {doing}")
    if isinstance(exc, WinRMError):
        return ProtocolError(f"WinRM error from {where} while {doing}: {_short(exc)}")
    if isinstance(exc, ValueError):
        return ProtocolError(f"invalid connection settings for {target.name}: {exc}")
    return ProtocolError(f"unexpected {type(exc).__name__} talking to {where} while {doing}: {_short(exc)}")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nxt in (current.__cause__, current.__context__):
            if nxt is not None:
                stack.append(nxt)
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException):
                stack.append(arg)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)


def _has_socket_timeout_on_connect(chain: list[BaseException]) -> bool:
    return any(type(c).__name__ == "ConnectTimeoutError" for c in chain)


def _is_spnego_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("spnego")


def _tls_error(exc: BaseException, chain: list[BaseException], where: str, target: HostTarget) -> TlsError:
    text = " ".join(str(c) for c in chain)
    if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(exc, ssl.SSLCertVerificationError):
        if "Hostname mismatch" in text or "doesn't match" in text or "IP address mismatch" in text:
            return TlsError(
                f"the certificate of {where} does not name {target.address!r}",
                hint="connect by the name in the certificate, or fix the certificate's SAN",
            )
        if "expired" in text:
            return TlsError(f"the certificate of {where} has expired", hint="renew the WinRM HTTPS certificate")
        return TlsError(
            f"the certificate of {where} is not trusted",
            hint="pass the issuing CA with --ca-bundle (or --no-verify for a lab, which disables protection)",
        )
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return TlsError(
            f"{where} does not speak TLS", hint="it is probably an HTTP listener: use --transport http or port 5986"
        )
    return TlsError(f"TLS handshake with {where} failed: {_short(exc, 200)}")


def _auth_error(exc: BaseException, target: HostTarget, where: str) -> AuthError:
    auth = target.options.auth
    text = str(exc)
    if auth in ("kerberos", "negotiate") and ("Server not found" in text or "not found in Kerberos database" in text):
        return AuthError(
            f"Kerberos has no service principal for {target.address!r}",
            hint="connect by the host's FQDN (not its IP) or set kerberos_hostname; check the HTTP/<fqdn> SPN",
        )
    if "Clock skew" in text or "clock skew" in text:
        return AuthError(f"Kerberos rejected the ticket for {where}: clock skew", hint="sync time (w32tm / chrony)")
    if "Cannot find KDC" in text or ("realm" in text.lower() and "Cannot" in text):
        return AuthError(f"no KDC found for the realm of {target.username or 'the user'}", hint="check krb5.conf")
    if "expired" in text.lower() and auth in ("kerberos", "negotiate"):
        return AuthError(f"the Kerberos ticket for {where} has expired", hint="run kinit again")
    return AuthError(
        f"{where} rejected the credentials ({auth})",
        hint="check PROCAUDIT_USER / PROCAUDIT_PASSWORD, the domain prefix, and that the account may use WinRM",
    )
