"""The lab's WinRM listener: HTTP/1.1 keep-alive over TCP or TLS, Windows' authentication schemes, message encryption.

One ``LabServer`` serves many lab hosts, each on its own loopback address, from a single accept thread;
each accepted connection gets its own thread (NTLM authenticates a connection, not a request). Faults are
applied here, where Windows or the network would show them: a host that is down never completes the TCP
handshake, a refusing host has no listener, a slow host answers every exchange late, a dropping host
cuts the connection in the middle of a response, a host with a bad certificate fails the TLS handshake.

Authentication, as a WinRM listener with these schemes enabled does it:

* ``Negotiate`` (SPNEGO: Kerberos or NTLM, or a raw Kerberos/NTLM token) and ``Kerberos`` with pyspnego's
  acceptor; Kerberos needs the lab KDC's keytab (``KRB5_KTNAME``, see ``lab/kdc.py``);
* ``CredSSP`` with pyspnego's CredSSP acceptor (NTLM inside); the delegated password is checked against the
  account and then dropped;
* certificate auth over HTTPS: the client presents a certificate from the lab CA whose UPN maps to an account
  (``Authorization: http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual``).

Over HTTP every body must be wrapped with WinRM message encryption (SPNEGO, Kerberos or CredSSP framing, by
the scheme the client used); over HTTPS bodies are plain SOAP and TLS protects them, and a Negotiate/Kerberos
logon carries channel bindings (the server certificate's hash) that must match.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import selectors
import socket
import ssl
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import spnego
import spnego.channel_bindings
from pypsrp.encryption import WinRMEncryption
from spnego._ntlm_raw.crypto import ntowfv1  # pyspnego's MD4-based NT hash (hashlib has no MD4 on OpenSSL 3)

from procaudit.errors import UserInputError
from procaudit.lab.faults import Fault
from procaudit.lab.pki import HostTls, upn_of
from procaudit.lab.wsman import Executor, ScriptOutcome, ScriptRun, ShellService

log = logging.getLogger(__name__)

_MAX_HEADER_LINES = 100
_MAX_BODY = 16 * 1024 * 1024
_IDLE_SECONDS = 120.0  # a keep-alive connection with no request for this long is closed
_MUTUAL_CERT_AUTH = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
_ENCRYPTION = {  # the WinRM encryption protocol that goes with each scheme
    "negotiate": WinRMEncryption.SPNEGO,
    "kerberos": WinRMEncryption.KERBEROS,
    "credssp": WinRMEncryption.CREDSSP,
}
# WinRM's service defaults: Negotiate and Kerberos on, CredSSP and certificate auth off until enabled.
DEFAULT_SCHEMES: tuple[str, ...] = ("Negotiate", "Kerberos")


@dataclass
class EndpointStats:
    """What crossed the wire for one host: raw socket bytes (headers included) and HTTP exchanges."""

    bytes_in: int = 0
    bytes_out: int = 0
    requests: int = 0
    connections: int = 0
    pipelines: int = 0
    stops: int = 0  # pipelines the client stopped (PSRP ctrl_c signal)
    logons: Counter[str] = field(default_factory=Counter)  # completed logons by mechanism: kerberos, ntlm, ...
    encrypted: Counter[str] = field(default_factory=Counter)  # message-encrypted bodies by WinRM protocol

    def reset(self) -> None:
        self.bytes_in = self.bytes_out = self.requests = self.connections = self.pipelines = self.stops = 0
        self.logons.clear()
        self.encrypted.clear()


@dataclass
class HostEndpoint:
    """One lab host as the network sees it."""

    name: str
    address: str
    port: int
    executor: Executor
    faults: list[Fault] = field(default_factory=list)
    private_data: dict[str, object] = field(default_factory=dict)
    tls: HostTls | None = None
    auth_schemes: tuple[str, ...] = DEFAULT_SCHEMES  # what the 401 offers, in Windows' order ("CredSSP" if enabled)
    certificate_auth: bool = False  # Service/Auth/Certificate: client certificates are mapped only when enabled
    certificate_map: dict[str, str] = field(default_factory=dict)  # client certificate UPN (lower) -> account
    stats: EndpointStats = field(default_factory=EndpointStats)
    shells: ShellService = field(init=False)
    _stats_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        scheme = "https" if self.tls else "http"
        self.shells = ShellService(
            self._counted, self.private_data, f"{scheme}://{self.address}:{self.port}/wsman", on_stop=self._stopped
        )

    def _counted(self, run: ScriptRun) -> ScriptOutcome:
        self.count(pipelines=1)
        return self.executor(run)

    def _stopped(self) -> None:
        self.count(stops=1)

    def fault(self, kind: str) -> Fault | None:
        return next((f for f in self.faults if f.kind == kind), None)

    def count(
        self,
        *,
        bytes_in: int = 0,
        bytes_out: int = 0,
        requests: int = 0,
        connections: int = 0,
        pipelines: int = 0,
        stops: int = 0,
    ) -> None:
        with self._stats_lock:
            self.stats.bytes_in += bytes_in
            self.stats.bytes_out += bytes_out
            self.stats.requests += requests
            self.stats.connections += connections
            self.stats.pipelines += pipelines
            self.stats.stops += stops


class CredentialStore:
    """The accounts every lab host accepts, in the flat file pyspnego's NTLM acceptor reads.

    pyspnego reads the file named by the process-wide ``NTLM_USER_FILE`` variable, so all labs in one process
    share one store. Entries are written in the smbpasswd form with the NT hash precomputed, like a real
    account database: no plaintext password on disk, and no hashing on every logon. The file is private
    (0600) and removed at exit.
    """

    _lock = threading.Lock()
    _path: str | None = None
    _entries: ClassVar[set[tuple[str, str, str]]] = set()

    @classmethod
    def add(cls, username: str, password: str) -> None:
        domain, _, user = username.rpartition("\\")
        entry = (domain, user, password)  # a UPN (user@REALM) has no domain part, which is what pyspnego expects
        with cls._lock:
            if entry in cls._entries:
                return
            if any(d.lower() == entry[0].lower() and u.lower() == entry[1].lower() for d, u, _ in cls._entries):
                raise UserInputError(f"a lab in this process already accepts {username!r} with another password")
            cls._entries.add(entry)
            if cls._path is None:
                fd, cls._path = tempfile.mkstemp(prefix="procaudit-lab-ntlm-", text=True)
                os.close(fd)
                os.chmod(cls._path, 0o600)
                import atexit

                atexit.register(_remove_quietly, cls._path)
            text = "".join(
                f"{d}\\{u}:0:{'0' * 32}:{ntowfv1(p).hex().upper()}:[U]:LCT-00000000\n"
                if d
                else f"{u}:0:{'0' * 32}:{ntowfv1(p).hex().upper()}:[U]:LCT-00000000\n"
                for d, u, p in sorted(cls._entries)
            )
            with open(cls._path, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.environ["NTLM_USER_FILE"] = cls._path

    @classmethod
    def verify(cls, domain: str, user: str, password: str) -> bool:
        """Whether a delegated (CredSSP) credential is a lab account with its password."""
        with cls._lock:
            return any(
                u.lower() == user.lower() and (not d or not domain or d.lower() == domain.lower()) and p == password
                for d, u, p in cls._entries
            )


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class _Request:
    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


class _ConnectionClosed(Exception):
    pass


class _Connection:
    """One client TCP (or TLS) connection to one lab host."""

    def __init__(self, endpoint: HostEndpoint, sock: socket.socket, stopping: threading.Event) -> None:
        self.endpoint = endpoint
        self.sock = sock
        self.stopping = stopping
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.context: spnego.ContextProxy | None = None
        self.scheme = ""
        self.authenticated = False
        self.encryption: WinRMEncryption | None = None
        self.buffer = b""

    def serve(self) -> None:
        self.sock.settimeout(_IDLE_SECONDS)
        try:
            while not self.stopping.is_set():
                request = self._read_request()
                slow = self.endpoint.fault("slow")
                if slow:
                    time.sleep(slow.delay_ms / 1000)
                try:
                    self._respond(request)
                except (_ConnectionClosed, OSError):
                    raise
                except Exception as exc:  # a garbled request must not take the listener down; Windows answers 400
                    log.info("lab %s: bad request: %s", self.endpoint.name, type(exc).__name__)
                    self._reset_auth()
                    self._send(400, "Bad Request", {"Connection": "close"}, b"")
                    raise _ConnectionClosed from exc
        except (_ConnectionClosed, OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                self.sock.close()

    # -- HTTP framing ------------------------------------------------------------------------------------
    def _recv(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _ConnectionClosed
        self.endpoint.count(bytes_in=len(chunk))
        self.buffer += chunk

    def _read_request(self) -> _Request:
        while b"\r\n\r\n" not in self.buffer:
            if self.buffer[:1] == b"\x16":  # a TLS ClientHello on the HTTP port: HTTP.sys answers 400 in clear text
                self._send(400, "Bad Request", {"Connection": "close"}, b"")
                raise _ConnectionClosed
            if len(self.buffer) > 65536:
                raise _ConnectionClosed
            self._recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = ([*lines[0].split(" ", 2), "", ""])[:3]
        headers: dict[str, str] = {}
        for line in lines[1 : _MAX_HEADER_LINES + 1]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = self._content_length(method, headers)
        while len(self.buffer) < length:
            self._recv()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        self.endpoint.count(requests=1)
        return _Request(method, path, headers, body)

    def _content_length(self, method: str, headers: dict[str, str]) -> int:
        """The body length, as HTTP.sys insists on it: a POST without one is 411, a malformed one 400, neither hangs."""
        if "transfer-encoding" in headers:
            # WinRM clients always send Content-Length; the lab does not model chunked request bodies.
            self._refuse(501, "Not Implemented")
        raw = headers.get("content-length")
        if raw is None:
            if method == "POST":
                self._refuse(411, "Length Required")
            return 0
        if not raw.isascii() or not raw.isdigit():
            self._refuse(400, "Bad Request")
        length = int(raw)
        if length > _MAX_BODY:
            self._refuse(413, "Request Entity Too Large")
        return length

    def _refuse(self, status: int, reason: str) -> None:
        """Answer a request the lab cannot frame, then close the connection (its next bytes cannot be trusted)."""
        self._reset_auth()
        self._send(status, reason, {"Connection": "close"}, b"")
        raise _ConnectionClosed

    def _send(
        self,
        status: int,
        reason: str,
        headers: dict[str, str] | list[tuple[str, str]],
        body: bytes,
        *,
        cut: bool = False,
    ) -> None:
        pairs = list(headers.items()) if isinstance(headers, dict) else headers
        head = f"HTTP/1.1 {status} {reason}\r\nServer: Microsoft-HTTPAPI/2.0\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in pairs)
        head += f"Content-Length: {len(body)}\r\n\r\n"
        data = head.encode("latin-1") + body
        if cut:  # the 'drop' fault: half a response, then the connection is gone
            data = data[: len(head) + len(body) // 2]
        self.sock.sendall(data)
        self.endpoint.count(bytes_out=len(data))
        if cut:
            raise _ConnectionClosed

    # -- authentication and encryption -------------------------------------------------------------------
    def _reset_auth(self) -> None:
        self.context = None
        self.scheme = ""
        self.authenticated = False
        self.encryption = None

    def _challenge(self) -> list[tuple[str, str]]:
        """The 401 of a listener: one WWW-Authenticate header per enabled scheme, as HTTP.sys sends them."""
        return [("WWW-Authenticate", scheme) for scheme in self.endpoint.auth_schemes]

    def _unauthorized(self) -> None:
        self._reset_auth()
        self._send(401, "Unauthorized", self._challenge(), b"")

    def _respond(self, request: _Request) -> None:
        if request.method != "POST" or request.path.split("?")[0].rstrip("/").lower() != "/wsman":
            self._send(404, "Not Found", {}, b"")
            return
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        scheme = scheme.lower()
        offered = {s.lower() for s in self.endpoint.auth_schemes}
        if scheme in ("negotiate", "kerberos", "credssp") and scheme in offered:
            self._authenticate(scheme, base64.b64decode(token.strip() or ""), request)
            return
        if authorization.strip() == _MUTUAL_CERT_AUTH and self.endpoint.certificate_auth:
            self._certificate_logon(request)
            return
        if not self.authenticated:
            self._unauthorized()
            return
        self._serve_soap(request)

    def _new_context(self, scheme: str) -> spnego.ContextProxy:
        bindings = None
        if self.tls and self.endpoint.tls is not None:
            # The client binds its logon to the certificate it saw (RFC 5929); a man in the middle has another.
            bindings = spnego.channel_bindings.GssChannelBindings(application_data=self.endpoint.tls.channel_binding)
        if scheme == "credssp":
            return spnego.server(protocol="credssp")
        return spnego.server(
            protocol="kerberos" if scheme == "kerberos" else "negotiate",
            options=spnego.NegotiateOptions.wrapping_winrm,
            channel_bindings=bindings,
        )

    def _authenticate(self, scheme: str, token: bytes, request: _Request) -> None:
        if self.context is None or self.context.complete or scheme != self.scheme:
            self._reset_auth()
            self.scheme = scheme
            self.context = self._new_context(scheme)
        try:
            out_token = self.context.step(token)
        except spnego.exceptions.SpnegoError as exc:
            # Only the class: a message could carry client-supplied text, and never anything secret.
            log.info("lab %s: %s logon failed: %s", self.endpoint.name, scheme, type(exc).__name__)
            self._unauthorized()
            return
        if not self.context.complete:
            label = "CredSSP" if scheme == "credssp" else scheme.capitalize()
            header = f"{label} " + base64.b64encode(out_token or b"").decode()
            self._send(401, "Unauthorized", {"WWW-Authenticate": header}, b"")
            return
        if scheme == "credssp" and not self._delegation_ok():
            self._unauthorized()
            return
        if self.endpoint.fault("auth-fail"):
            self._unauthorized()
            return
        self.authenticated = True
        with self.endpoint._stats_lock:
            self.endpoint.stats.logons[_mechanism(scheme, self.context)] += 1
        if not self.tls:
            self.encryption = WinRMEncryption(self.context, _ENCRYPTION[scheme])
        # The final SPNEGO token (mechListMIC) must reach the client in this 200, or its first decrypt fails.
        label = "Kerberos" if scheme == "kerberos" else "Negotiate"
        headers = {"WWW-Authenticate": f"{label} " + base64.b64encode(out_token).decode()} if out_token else {}
        if request.body:
            self._serve_soap(request, extra_headers=headers)
        else:
            self._send(200, "OK", headers, b"")

    def _delegation_ok(self) -> bool:
        """CredSSP hands the server the user's password: it must be a lab account's. It is checked, then dropped."""
        assert self.context is not None
        creds = self.context.get_extra_info("client_credential")
        ok = bool(creds) and CredentialStore.verify(
            getattr(creds, "domain_name", "") or "",
            getattr(creds, "username", "") or "",
            getattr(creds, "password", ""),
        )
        if creds is not None and hasattr(self.context, "_ts_credential"):
            self.context._ts_credential = None  # keep no delegated password around after the check
        return ok

    def _certificate_logon(self, request: _Request) -> None:
        """WinRM certificate auth: TLS client certificate from a trusted issuer whose UPN maps to an account."""
        peer = self.sock.getpeercert(binary_form=True) if isinstance(self.sock, ssl.SSLSocket) else None
        upn = upn_of(peer) if peer else None
        account = self.endpoint.certificate_map.get(upn.lower()) if upn else None
        if account is None or self.endpoint.fault("auth-fail"):
            log.info("lab %s: certificate logon refused (%s)", self.endpoint.name, "no mapping" if peer else "no cert")
            self._unauthorized()
            return
        if not (self.authenticated and self.scheme == "certificate"):  # every request names the scheme again
            self.scheme = "certificate"
            self.authenticated = True
            with self.endpoint._stats_lock:
                self.endpoint.stats.logons["certificate"] += 1
        self._serve_soap(request)

    def _serve_soap(self, request: _Request, extra_headers: dict[str, str] | None = None) -> None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("multipart/encrypted", "multipart/x-multi-encrypted")):
            if self.encryption is None:
                if self.context is None or self.scheme not in _ENCRYPTION:
                    self._unauthorized()
                    return
                self.encryption = WinRMEncryption(self.context, _ENCRYPTION[self.scheme])  # asked for over HTTPS
            envelope = self.encryption.unwrap_message(request.body, "Encrypted Boundary")
            with self.endpoint._stats_lock:
                self.endpoint.stats.encrypted[self.encryption.protocol] += 1
        elif self.tls:
            envelope = request.body
        else:
            # Windows refuses unencrypted bodies on HTTP when AllowUnencrypted is false (the default).
            self._unauthorized()
            return
        cut = bool(self.endpoint.fault("drop")) and b"/windows/shell/Receive<" in envelope and b"CommandId=" in envelope
        status, reply = self.endpoint.shells.handle(envelope)
        headers = dict(extra_headers or {})
        if self.encryption is not None:
            wrapped_type, payload = self.encryption.wrap_message(reply)
            protocol = self.encryption.protocol
            headers["Content-Type"] = f'{wrapped_type};protocol="{protocol}";boundary="Encrypted Boundary"'
        else:
            payload = reply
            headers["Content-Type"] = "application/soap+xml;charset=UTF-8"
        self._send(status, "OK" if status == 200 else "Internal Server Error", headers, payload, cut=cut)


def _mechanism(scheme: str, context: spnego.ContextProxy) -> str:
    """What really authenticated the client: Negotiate may carry Kerberos or NTLM."""
    if scheme == "credssp":
        return "credssp"
    protocol = str(getattr(context, "negotiated_protocol", "") or scheme).lower()
    return "kerberos" if "kerberos" in protocol else "ntlm" if "ntlm" in protocol else protocol


class LabServer:
    """Serves a set of lab hosts until stopped. ``start()`` returns once every listener is bound."""

    def __init__(self, endpoints: list[HostEndpoint]) -> None:
        self.endpoints = endpoints
        self._stopping = threading.Event()
        self._listeners: list[socket.socket] = []
        self._parked: list[socket.socket] = []
        self._selector = selectors.DefaultSelector()
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def start(self) -> None:
        for endpoint in self.endpoints:
            if endpoint.fault("refuse"):
                continue  # nothing listens: the kernel answers the SYN with a reset
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((endpoint.address, endpoint.port))
            self._listeners.append(listener)
            if endpoint.fault("down"):
                self._park(listener, endpoint)
                continue
            listener.listen(128)
            listener.setblocking(False)
            self._selector.register(listener, selectors.EVENT_READ, endpoint)
        self._thread = threading.Thread(target=self._accept_loop, name="lab-accept", daemon=True)
        self._thread.start()

    def _park(self, listener: socket.socket, endpoint: HostEndpoint) -> None:
        """Make a host look powered off: fill its accept queue so new SYNs are dropped and connects time out."""
        listener.listen(0)
        for _ in range(2):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((endpoint.address, endpoint.port))
            self._parked.append(filler)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=0.2):
                listener = key.fileobj
                assert isinstance(listener, socket.socket)
                try:
                    sock, _addr = listener.accept()
                except OSError:
                    continue
                endpoint: HostEndpoint = key.data
                threading.Thread(
                    target=self._serve_connection, args=(endpoint, sock), name=f"lab-{endpoint.name}", daemon=True
                ).start()

    def _serve_connection(self, endpoint: HostEndpoint, sock: socket.socket) -> None:
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # or every exchange stalls on delayed ACK
        endpoint.count(connections=1)
        with self._conn_lock:
            self._connections.add(sock)
        current = sock
        try:
            if endpoint.tls is not None:
                sock.settimeout(_IDLE_SECONDS)
                try:
                    current = endpoint.tls.context.wrap_socket(sock, server_side=True)  # takes over the descriptor
                except (ssl.SSLError, OSError) as exc:
                    log.info("lab %s: TLS handshake failed: %s", endpoint.name, exc)
                    return
                with self._conn_lock:
                    self._connections.discard(sock)
                    self._connections.add(current)
            _Connection(endpoint, current, self._stopping).serve()
        finally:
            with self._conn_lock:
                self._connections.discard(sock)
                self._connections.discard(current)
            with contextlib.suppress(OSError):
                current.close()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._conn_lock:
            for sock in list(self._connections):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for endpoint in self.endpoints:
            endpoint.shells.close_all()
        for sock in [*self._listeners, *self._parked]:
            with contextlib.suppress(OSError):
                sock.close()
        self._selector.close()

    def __enter__(self) -> LabServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
