"""``PsrpConnector``: the only module that talks to pypsrp (WSMan + RunspacePool + PowerShell).

One runspace pool per host, opened on first use and reused for every script of the run. Opening the
session and each script run under a wall-clock deadline (``script_timeout``): every HTTP exchange,
authentication legs included, gets at most the time left, and a running script is polled with WSMan
operation timeouts that end at the deadline and is then stopped (PSRP ctrl_c signal), because pypsrp
itself waits forever for a running script and retries timed-out receives with back-off.
Errors are mapped onto ``procaudit.errors``; non-terminating errors on the error stream count as failures
because every shipped script runs with ``$ErrorActionPreference = 'Stop'``.

A fan-out is bound by this process's CPU (one GIL), so two things sit under pypsrp without changing the wire:
Negotiate/Kerberos/NTLM without a proxy go through ``winrm_http.WinRMHttp`` (the same HTTP exchanges as pypsrp's
requests transport, at a tenth of the CPU), and pypsrp's rendering of the messages that are the same for every
host, and its parsing of the replies that are, happen once per process (``_MemoSerializer``).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import functools
import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, TypeVar

import requests
from cryptography import x509
from pydantic import ValidationError
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.messages import (
    ApplicationPrivateData,
    CreatePipeline,
    InitRunspacePool,
    PipelineState,
    RunspacePoolStateMessage,
    SessionCapability,
)
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import Serializer
from pypsrp.wsman import WSMan
from spnego._ntlm_raw.crypto import ntowfv1  # pyspnego's MD4-based NT hash (hashlib has no MD4 on OpenSSL 3)

from procaudit.errors import (
    AuthError,
    CancelledError,
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
from procaudit.transport.winrm_http import (
    LEAN_AUTHS,
    WinRMHttp,
    WireConnectFailed,
    WireConnectTimeout,
    WireCut,
    WireReadTimeout,
    tls_context,
)

log = logging.getLogger(__name__)

P = TypeVar("P", bound=ScriptParams)
R = TypeVar("R", bound=ScriptResult)

_POLL_SECONDS = 5  # longest WSMan OperationTimeout per poll
_MIN_POLL_SECONDS = 0.5  # shortest one we ask for (WinRM takes fractional xs:duration values such as PT0.750S)
_READ_MARGIN = 15  # HTTP read timeout beyond the operation timeout, for slow links
_GRACE = 0.25  # an exchange may overrun the deadline by this much before we give up on it
_STOP_SECONDS = 2.0  # budget for stopping a pipeline, or closing a failed session, after the fact
_CLOSE_SECONDS = 5.0  # budget for closing a healthy session


class _BudgetSpent(Exception):
    """The deadline passed before or during an HTTP exchange (raised by our adapter wrapper, never retried)."""


class _Cancelled(Exception):
    """The run was interrupted: ``cancel()`` was called (raised by our adapter wrapper, never retried)."""


class PsrpConnector:
    """Connector over PowerShell Remoting (WinRM). Not thread-safe: one per host per worker."""

    def __init__(self, target: HostTarget, credentials: Credentials | None) -> None:
        self.target = target
        self._credentials = credentials
        self._wsman: WSMan | None = None
        self._pool: RunspacePool | None = None
        self._finished: PowerShell | None = None
        self._deadline: float | None = None  # monotonic; None = no budget
        self._dead: list[tuple[RunspacePool | None, WSMan, float]] = []
        self._budget = target.options.script_timeout
        self._cancelled = threading.Event()
        self._winding_down = False  # stopping a pipeline or closing: these exchanges still go out after cancel()

    # -- session -----------------------------------------------------------------------------------------
    def _make_wsman(self) -> WSMan:
        opts = self.target.options
        kwargs: dict[str, Any] = {
            "port": opts.effective_port,
            "ssl": opts.scheme == "https",
            "auth": opts.auth,
            # --no-verify wins over a ca_bundle from the inventory; a bundle replaces the system trust store.
            "cert_validation": (str(opts.ca_bundle) if opts.ca_bundle else True) if opts.cert_validation else False,
            "connection_timeout": opts.connect_timeout,
            "operation_timeout": min(_POLL_SECONDS, opts.operation_timeout),
            "read_timeout": opts.operation_timeout + _READ_MARGIN,
            # No urllib3 connection retries, and no sleeping between pypsrp's own retries of a timed-out Receive:
            # a back-off sleep happens outside any exchange, so the adapter wrapper could not cut it at the deadline.
            "reconnection_retries": 0,
            "reconnection_backoff": 0.0,
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
            if opts.scheme != "https":
                raise ValueError("certificate auth works only over HTTPS (transport https)")
            for label, path in (
                ("certificate_pem", opts.certificate_pem),
                ("certificate_key_pem", opts.certificate_key_pem),
            ):
                if path is None or not path.is_file():
                    raise ValueError(f"certificate auth needs {label} naming a readable PEM file (got {path})")
            kwargs["certificate_pem"] = str(opts.certificate_pem)
            kwargs["certificate_key_pem"] = str(opts.certificate_key_pem)
        elif self._credentials is not None:
            kwargs["username"] = self._credentials.username
            kwargs["password"] = self._credentials.password
            if opts.auth == "ntlm":
                # pyspnego accepts 'LM:NT' hashes in place of a password; hashing once per run instead of once per
                # host saves the pure-Python DES of the obsolete LM hash on every connection.
                kwargs["password"] = _ntlm_hashes(self._credentials.password)
        wsman = WSMan(self.target.address, **kwargs)
        if opts.auth in LEAN_AUTHS and not opts.proxy:
            # Our own HTTP under pypsrp's WSMan: the same exchanges, a fraction of the CPU of requests + urllib3.
            wsman.transport = WinRMHttp(  # type: ignore[assignment]
                self.target.address,
                opts.effective_port,
                tls=tls_context(opts.cert_validation, str(opts.ca_bundle) if opts.ca_bundle else None)
                if opts.scheme == "https"
                else None,
                auth=opts.auth,
                username=kwargs.get("username"),
                password=kwargs.get("password"),
                service=opts.kerberos_service,
                hostname_override=opts.kerberos_hostname,
                connection_timeout=opts.connect_timeout,
                read_timeout=kwargs["read_timeout"],
                guard=self,
            )
            return wsman
        # pypsrp builds its requests session lazily with trust_env on, which makes requests re-read every proxy
        # variable in os.environ for each exchange (about 10 ms of CPU per host). Proxies are decided above.
        session = wsman.transport._build_session()
        session.trust_env = False
        for adapter in session.adapters.values():
            # Every exchange goes through an adapter, the extra legs of an authentication handshake included
            # (requests' auth hooks resend on the same adapter), so this is where the deadline is enforced.
            adapter.send = self._bounded(adapter.send)  # type: ignore[method-assign]
        wsman.transport.session = session
        return wsman

    def _bounded(self, send: Any) -> Any:
        def bounded_send(request: Any, *args: Any, **kwargs: Any) -> Any:
            if self._cancelled.is_set() and not self._winding_down:
                raise _Cancelled
            if self._deadline is None:
                return send(request, *args, **kwargs)
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise _BudgetSpent
            timeout = kwargs.get("timeout")
            connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
            limit = remaining + _GRACE
            capped = (min(connect or limit, remaining), min(read or limit, limit))
            kwargs["timeout"] = capped
            try:
                return send(request, *args, **kwargs)
            except requests.exceptions.Timeout as exc:
                if time.monotonic() >= self._deadline:
                    raise _BudgetSpent from exc
                raise

        return bounded_send

    # -- the exchange guard of the lean transport (the same rules as bounded_send above) --------------------
    def limits(self, connect: float, read: float) -> tuple[float, float]:
        if self._cancelled.is_set() and not self._winding_down:
            raise _Cancelled
        if self._deadline is None:
            return connect, read
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise _BudgetSpent
        return min(connect, remaining), min(read, remaining + _GRACE)

    def timed_out(self) -> None:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise _BudgetSpent

    def open(self) -> None:
        """Connect, authenticate and open the runspace pool, all within ``script_timeout``."""
        if self._pool is not None:
            return
        self._budget = self.target.options.script_timeout
        self._deadline = time.monotonic() + self._budget
        try:
            self._open()
        finally:
            self._deadline = None

    def _open(self) -> RunspacePool:
        if self._pool is not None:
            return self._pool
        with self._classified("connecting"):
            self._wsman = self._make_wsman()
            pool = RunspacePool(self._wsman)
            _MemoSerializer.install(pool)
            # Kept before open(): if the shell is created and the rest of the opening fails, _abandon() sets it
            # aside and close() deletes it, instead of leaving it on the host until its idle timeout.
            self._pool = pool
            pool.open()
        return pool

    def cancel(self) -> None:
        """Give up at the next exchange (thread-safe): the current script is stopped, the run raises cancelled."""
        self._cancelled.set()

    def _check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise CancelledError.in_flight(self.target.name)

    def close(self) -> None:
        """Close the runspace pool and the HTTP session; a failing close never hides the real error.

        A healthy session gets a few seconds to say goodbye (WSMan Delete); sessions set aside after a failure
        get less, and only now, so a failure is reported as soon as it is known.
        """
        self._winding_down = True
        healthy = _STOP_SECONDS if self._cancelled.is_set() else _CLOSE_SECONDS
        for pool, wsman, budget in [*self._dead, (self._pool, self._wsman, healthy)]:
            if wsman is None:
                continue
            self._deadline = time.monotonic() + budget
            if pool is not None:
                with contextlib.suppress(Exception):
                    pool.close()
            with contextlib.suppress(Exception):
                wsman.close()
        self._winding_down = False
        self._dead.clear()
        self._pool = None
        self._wsman = None
        self._finished = None
        self._deadline = None

    def _abandon(self) -> None:
        """Set a session that just failed aside; ``close()`` says goodbye to it later, briefly."""
        if self._wsman is not None:
            self._wsman.operation_timeout = 2
            self._dead.append((self._pool, self._wsman, _STOP_SECONDS))
        self._pool = None
        self._wsman = None
        self._finished = None

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
        self._budget = timeout if timeout is not None else self.target.options.script_timeout
        deadline = time.monotonic() + self._budget
        self._deadline = deadline
        try:
            self._check_cancelled()
            pool = self._open()
            self._release_finished()
            ps = PowerShell(pool)
            ps.add_script(spec.text)
            bound = params.to_psrp()
            ps.add_parameters(bound)
            try:
                with self._classified(f"running {spec.name}"):
                    with _MemoSerializer.pipeline(pool, spec.text, bound):
                        ps.begin_invoke(input=_as_generator(input) if input is not None else None)
                    while ps.state == PSInvocationState.RUNNING:
                        if self._cancelled.is_set():
                            self._stop(ps)
                            self._check_cancelled()
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
                # pipeline would cost one more exchange per host for nothing. Only while the pool is still ours:
                # after a failure the session was set aside, and terminating its pipeline would spend the next
                # script's budget on a dead connection.
                if self._pool is pool:
                    self._finished = ps
        finally:
            self._deadline = None
        return _result(spec, ps)

    def _release_finished(self) -> None:
        """Terminate the previous pipeline so long runs never hit MaxConcurrentCommandsPerShell."""
        if self._finished is not None:
            with contextlib.suppress(Exception):
                self._finished.close()
            self._finished = None

    def _poll(self, ps: PowerShell, remaining: float) -> None:
        assert self._wsman is not None
        # The operation timeout of the last poll ends at the deadline; the HTTP read timeout leaves room for
        # link latency (capped at the deadline by the adapter wrapper) so a slow but live host is not dead.
        longest = min(_POLL_SECONDS, self.target.options.operation_timeout)
        operation = round(max(_MIN_POLL_SECONDS, min(longest, remaining)), 3)
        # pypsrp annotates these as int; WinRM and requests take fractional seconds (pypsrp formats PT{n}S).
        self._wsman.operation_timeout = operation  # type: ignore[assignment]
        self._wsman.transport.read_timeout = operation + _READ_MARGIN  # type: ignore[assignment]
        ps.poll_invoke()

    def _stop(self, ps: PowerShell) -> None:
        self._deadline = time.monotonic() + _STOP_SECONDS
        self._winding_down = True
        try:
            with contextlib.suppress(Exception):
                ps.stop()
        finally:
            self._winding_down = False

    @contextlib.contextmanager
    def _classified(self, doing: str) -> Iterator[None]:
        try:
            yield
        except DeadlineError:
            raise
        except _Cancelled:
            log.debug("%s: cancelled while %s", self.target.name, doing)
            self._abandon()
            raise CancelledError(f"cancelled: the run was interrupted while {doing} on {self.target.name}") from None
        except _BudgetSpent:
            log.debug("%s: deadline passed while %s", self.target.name, doing)
            self._abandon()
            raise DeadlineError(
                f"{self.target.address} did not answer within the deadline ({self._budget:g}s) while {doing}",
                hint="host or link overloaded; raise --script-timeout if it is just slow",
            ) from None
        except Exception as exc:
            error = exc if isinstance(exc, TransportError) else classify(exc, self.target, doing)
            log.debug("%s: %s failed: %r", self.target.name, doing, exc)
            self._abandon()  # the session is unusable after a transport failure; the next run reconnects
            if error is exc:
                raise
            raise error from exc


_MEMO_LIMIT = 64
# Replies pypsrp only reads (RunspacePool._process_*, PowerShell._process_pipeline_state): one parsed copy serves all.
_SHARED_REPLIES = (SessionCapability, ApplicationPrivateData, RunspacePoolStateMessage, PipelineState)


class _MemoSerializer(Serializer):
    """pypsrp's serializer, remembering the CLIXML of the messages that are the same for every host, and the
    parsed form of the replies that are.

    Every runspace pool we open sends the same SessionCapability and InitRunspacePool, and every run of one script
    with the same parameters the same CreatePipeline; pypsrp builds an element tree for each and renders it, about
    a quarter of the client's CPU per host. The first rendering of each (pypsrp's own bytes, exactly what
    ``Message.pack`` would send) is kept and handed to ``Message.pack``, which sends bytes as they are. Only messages
    whose content is fully known from plain values are kept: a pipeline only while ``pipeline()`` names its script
    and parameters, and only if those are plain data (no SecureString, whose CLIXML depends on the session key).
    """

    _memo: ClassVar[dict[tuple[Any, ...], bytes]] = {}
    _replies: ClassVar[dict[tuple[str, str], Any]] = {}
    _memo_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        super().__init__()
        self.pipeline_key: tuple[Any, ...] | None = None

    @classmethod
    def install(cls, pool: RunspacePool) -> None:
        serializer = cls()
        pool._serializer = serializer
        pool._fragmenter.serializer = serializer

    @staticmethod
    @contextlib.contextmanager
    def pipeline(pool: RunspacePool, script: str, parameters: dict[str, Any]) -> Iterator[None]:
        serializer = pool._serializer
        plain = _plain_key(parameters)
        if not isinstance(serializer, _MemoSerializer) or plain is None:
            yield
            return
        serializer.pipeline_key = (script, plain)
        try:
            yield
        finally:
            serializer.pipeline_key = None

    def _key(self, value: Any) -> tuple[Any, ...] | None:
        if isinstance(value, SessionCapability):
            return (
                "SessionCapability",
                value.protocol_version,
                value.ps_version,
                value.serialization_version,
                value.time_zone,
            )
        if isinstance(value, InitRunspacePool):
            if value.host_info is None or value.host_info.host is not None or value.application_arguments is not None:
                return None
            return (
                "InitRunspacePool",
                value.min_runspaces,
                value.max_runspaces,
                _enum(value.thread_options),
                _enum(value.apartment_state),
            )
        if isinstance(value, CreatePipeline) and self.pipeline_key is not None:
            if value.host_info is None or value.host_info.host is not None:
                return None
            return (
                "CreatePipeline",
                self.pipeline_key,
                value.no_input,
                _enum(value.apartment_state),
                _enum(value.remote_stream_options),
                value.add_to_history,
                value.is_nested,
            )
        return None

    def deserialize(self, element: Any, metadata: Any = None, clear: bool = True) -> Any:
        """Replies that are the same text for every host (capability, private data, states) are parsed once."""
        kind = getattr(metadata, "object", None)
        if not (clear and isinstance(element, str) and kind in _SHARED_REPLIES and "<SS" not in element):
            return super().deserialize(element, metadata, clear)
        key = (kind.__name__, element)
        with self._memo_lock:
            known = self._replies.get(key)
        if known is None:
            known = super().deserialize(element, metadata, clear)
            with self._memo_lock:
                if len(self._replies) >= _MEMO_LIMIT:
                    self._replies.clear()
                self._replies[key] = known
        return known

    def serialize(self, value: Any, metadata: Any = None, parent: Any = None, clear: bool = True) -> Any:
        key = self._key(value) if clear and metadata is None and parent is None else None
        if key is None:
            return super().serialize(value, metadata, parent, clear)
        with self._memo_lock:
            known = self._memo.get(key)
        if known is None:
            element = super().serialize(value, metadata, parent, clear)
            if element is None:
                return None
            known = ET.tostring(element, encoding="utf-8", method="xml")
            with self._memo_lock:
                if len(self._memo) >= _MEMO_LIMIT:
                    self._memo.clear()
                self._memo[key] = known
        return known


def _enum(value: Any) -> Any:
    return None if value is None else (type(value).__name__, value.value)


def _plain_key(value: Any) -> Any:
    """A hashable, type-exact image of plain parameter data, or None if any value is not plain data."""
    if value is None or isinstance(value, bool | int | float | str):
        return (type(value).__name__, value)
    if isinstance(value, list | tuple):
        items = [_plain_key(v) for v in value]
        return None if any(i is None for i in items) else (type(value).__name__, tuple(items))
    if isinstance(value, dict):
        pairs = [(_plain_key(k), _plain_key(v)) for k, v in value.items()]
        if any(k is None or v is None for k, v in pairs):
            return None
        return ("dict", tuple(pairs))
    return None


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
    if isinstance(exc, WireConnectTimeout | requests.exceptions.ConnectTimeout) or _has_socket_timeout_on_connect(
        chain
    ):
        return UnreachableError(
            f"no answer from {where} within {target.options.connect_timeout:g}s while {doing}",
            hint="host down, wrong address, or a firewall dropping WinRM traffic",
        )
    if isinstance(exc, WireCut) and exc.mid_response:
        return ConnectionLostError(
            f"connection to {where} was cut mid-response while {doing}", hint="network drop or WinRM restart; retry"
        )
    if isinstance(exc, WireConnectFailed | WireCut | requests.exceptions.ConnectionError):
        name = " ".join(type(c).__name__ for c in chain)
        if "NameResolutionError" in name or any(isinstance(c, socket.gaierror) for c in chain):
            return UnreachableError(f"cannot resolve {target.address!r}", hint="check the name or DNS")
        if any(isinstance(c, ConnectionRefusedError) or getattr(c, "errno", None) == errno.ECONNREFUSED for c in chain):
            return UnreachableError(
                f"connection refused by {where}",
                hint=f"is the WinRM {scheme.upper()} listener enabled on port {target.options.effective_port}?",
            )
        if "NewConnectionError" in name or isinstance(exc, WireConnectFailed):
            return UnreachableError(f"cannot connect to {where}: {_short(exc, 160)}")
        if scheme == "http" and doing == "connecting" and _peer_certificate(target) is not None:
            return TlsError(
                f"{where} is an HTTPS listener; we spoke plain HTTP to it",
                hint="use --transport https (or port 5985 for the HTTP listener)",
            )
        return ConnectionLostError(
            f"connection to {where} was cut while {doing}", hint="network drop or WinRM service restart; retry"
        )
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return ConnectionLostError(
            f"connection to {where} was cut mid-response while {doing}", hint="network drop or WinRM restart; retry"
        )
    if isinstance(exc, WireReadTimeout | requests.exceptions.ReadTimeout):
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


_AUTH_MODULES = ("spnego", "krb5", "gssapi", "requests_credssp")


def _is_spnego_error(exc: BaseException) -> bool:
    """pyspnego, the Kerberos libraries under it and requests-credssp raise their own exception trees."""
    return type(exc).__module__.startswith(_AUTH_MODULES)


def _tls_error(exc: BaseException, chain: list[BaseException], where: str, target: HostTarget) -> TlsError:
    text = " ".join(str(c) for c in chain)
    if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(exc, ssl.SSLCertVerificationError):
        seen = _peer_certificate(target)
        if "Hostname mismatch" in text or "doesn't match" in text or "IP address mismatch" in text:
            names = f" (it names {', '.join(seen.names)})" if seen and seen.names else ""
            return TlsError(
                f"the certificate of {where} does not name {target.address!r}{names}",
                hint="connect by a name the certificate holds, or re-issue it with this name/address in its SAN",
            )
        if "expired" in text:
            until = f" on {seen.not_after:%Y-%m-%d %H:%M} UTC" if seen else ""
            return TlsError(
                f"the certificate of {where} expired{until}",
                hint="renew the WinRM HTTPS certificate and rebind the listener (winrm set winrm/config/Listener)",
            )
        if "not yet valid" in text:
            return TlsError(f"the certificate of {where} is not valid yet", hint="check the clocks on both ends")
        issuer = f", issued by {seen.issuer!r}," if seen else ""
        bundle = f" (--ca-bundle {target.options.ca_bundle} does not hold it)" if target.options.ca_bundle else ""
        return TlsError(
            f"the certificate of {where}{issuer} is not trusted{bundle}",
            hint="pass the issuing CA's PEM with --ca-bundle (or the inventory's ca_bundle); --no-verify only "
            "in a lab, as it lets anyone impersonate the host",
        )
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return TlsError(
            f"{where} does not speak TLS", hint="it is probably an HTTP listener: use --transport http or port 5986"
        )
    if "alert certificate required" in text.lower() or "alert_certificate_required" in text.lower():
        return TlsError(
            f"{where} requires a client certificate", hint="set certificate_pem/certificate_key_pem (auth certificate)"
        )
    if target.options.auth == "certificate" and any(m in text.lower() for m in ("unknown ca", "eof occurred")):
        # TLS 1.3: the server checks the client certificate after the client's handshake is done, so a rejected
        # certificate shows as an alert or a closed connection on the first read.
        return TlsError(
            f"{where} ended the TLS session after we presented our client certificate: it does not trust its issuer",
            hint="import the issuing CA into the host's Trusted Root store (and Trusted People for the mapping)",
        )
    return TlsError(f"TLS handshake with {where} failed: {_short(exc, 200)}")


class _SeenCertificate:
    def __init__(self, names: list[str], issuer: str, not_after: datetime.datetime) -> None:
        self.names = names
        self.issuer = issuer
        self.not_after = not_after


def _peer_certificate(target: HostTarget) -> _SeenCertificate | None:
    """Fetch the certificate a host presents, unvalidated, only to say what is wrong with it. Best effort."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(
                (target.address, target.options.effective_port), timeout=min(target.options.connect_timeout, 3.0)
            ) as raw,
            context.wrap_socket(raw) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        if not der:
            return None
        cert = x509.load_der_x509_certificate(der)
        names: list[str] = []
        with contextlib.suppress(x509.ExtensionNotFound):
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = [
                *san.get_values_for_type(x509.DNSName),
                *(str(ip) for ip in san.get_values_for_type(x509.IPAddress)),
            ]
        return _SeenCertificate(names, cert.issuer.rfc4514_string(), cert.not_valid_after_utc)
    except (OSError, ValueError):
        return None


def _auth_error(exc: BaseException, target: HostTarget, where: str) -> AuthError:
    """Name the likely cause of an authentication failure; Kerberos failures say which of the usual suspects."""
    auth = target.options.auth
    text = " ".join(str(c) for c in _causes(exc))
    user = target.username or "the user"
    spn_host = target.options.kerberos_hostname or target.address
    spn = f"{target.options.kerberos_service}/{spn_host}"
    server_missing = re.search(r"Server (\S+) not found in Kerberos database", text)
    if server_missing and server_missing.group(1).startswith("krbtgt/"):
        return AuthError(
            f"Kerberos finds no path from the realm of {user} to the realm of {spn} "
            f"({server_missing.group(1)} unknown)",
            hint="the host is in another realm without a trust; use an account of the host's realm (user@REALM) "
            "or check [domain_realm] in krb5.conf",
        )
    if server_missing or "Server not found in Kerberos database" in text:
        principal = server_missing.group(1) if server_missing else spn
        by_ip = not target.options.kerberos_hostname and _is_ip(target.address)
        return AuthError(
            f"the KDC has no service principal {principal} for {where}",
            hint="connecting by IP address needs kerberos_hostname set to the host's FQDN"
            if by_ip
            else f"register it on the computer account (setspn -S {spn} <computer>) or set kerberos_hostname to the "
            "name its SPN uses",
        )
    if ("Client '" in text and "not found in Kerberos database" in text) or "Client not found" in text:
        return AuthError(
            f"the KDC does not know the account {user!r}",
            hint="for Kerberos give the user as user@REALM (REALM in upper case), not DOMAIN\\user; check the realm",
        )
    realm = re.search(r'Cannot find KDC for realm "([^"]+)"', text)
    if realm or "Cannot resolve network address for KDC" in text:
        name = realm.group(1) if realm else "the user's realm"
        return AuthError(
            f"no KDC is known for realm {name} (user {user})",
            hint="wrong realm? the realm is the upper-case part after @; otherwise add it to krb5.conf [realms] "
            "(or enable dns_lookup_kdc)",
        )
    if "Clock skew too great" in text or "clock skew" in text.lower():
        return AuthError(
            f"Kerberos rejected the logon to {where}: clock skew too great",
            hint="the clocks of this machine, the KDC and the host differ by more than 5 minutes: sync them "
            "(chrony / w32tm)",
        )
    if (
        "Ticket expired" in text
        or "credential has expired" in text
        or ("Credentials cache" in text and "expired" in text)
    ):
        return AuthError(
            f"the Kerberos ticket for {user} has expired",
            hint="get a new one with kinit (or let procaudit do it: set PROCAUDIT_PASSWORD); if it is fresh, this "
            "machine's clock is ahead of the KDC's: sync it",
        )
    if (
        "No Kerberos credentials available" in text
        or "No credentials cache found" in text
        or ("No credentials were supplied" in text)
    ):
        return AuthError(
            "no Kerberos ticket and no password for the logon",
            hint="run kinit user@REALM first, or set PROCAUDIT_USER / PROCAUDIT_PASSWORD",
        )
    if "Preauthentication failed" in text or "Decrypt integrity check failed" in text:
        return AuthError(
            f"the KDC rejected the password of {user}",
            hint="check PROCAUDIT_PASSWORD (and that the account is enabled)",
        )
    if auth == "kerberos" and ("not available" in text or ("gssapi" in text.lower() and "module" in text.lower())):
        return AuthError(
            "Kerberos is not available in this Python", hint="pip install 'procaudit[kerberos]' (needs libkrb5-dev)"
        )
    if auth == "credssp":
        return AuthError(
            f"{where} rejected the CredSSP logon of {user}",
            hint="check the password and that the host allows CredSSP (Enable-WSManCredSSP -Role Server); "
            "the Security log on the host has the reason",
        )
    if auth == "certificate":
        return AuthError(
            f"{where} did not map our client certificate to an account",
            hint="map it on the host (New-Item WSMan:\\localhost\\ClientCertificate, Subject = the certificate's "
            "UPN) and enable Service/Auth/Certificate",
        )
    return AuthError(
        f"{where} rejected the credentials ({auth})",
        hint="check PROCAUDIT_USER / PROCAUDIT_PASSWORD, the domain prefix, and that the account may use WinRM",
    )


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True
