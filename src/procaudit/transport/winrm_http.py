"""A lean HTTP transport for pypsrp's ``WSMan``: one keep-alive socket, pyspnego, WinRM message encryption.

pypsrp sends every WSMan envelope through ``WSMan.transport`` (``send(message, retries_on_read_timeout=,
timeout=) -> bytes``, ``close()``, ``endpoint``). Its own transport goes through requests, urllib3 and
http.client, which cost about 1.5 ms of CPU per HTTP exchange; a fan-out is bound by that CPU (one interpreter,
one GIL). This transport speaks the same wire for Negotiate, Kerberos and NTLM, over HTTP with WinRM message
encryption or over HTTPS with channel binding, straight on a socket:

* the same exchanges in the same order as pypsrp's transport: over HTTP an empty POST to set up the security
  context (401 with the offered schemes, then the handshake legs with empty bodies) before the first encrypted
  envelope; over HTTPS the first envelope goes out without credentials and is resent on each handshake leg;
* pypsrp's choice of scheme from the ``WWW-Authenticate`` offer, its SPN (``service``/host or the override), its
  channel binding (RFC 5929 ``tls-server-end-point``) and its encryption framing (``WinRMEncryption``);
* certificate validation as requests does it: a CA bundle replaces the trust store, otherwise
  ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` or certifi's bundle; TLS 1.2 at least; host name or IP checked;
* pypsrp's errors where pypsrp raises them (``AuthenticationError`` on a final 401, ``WinRMTransportError`` with
  the decrypted body on any other status, so WSMan faults are parsed as before), and the failures of the
  connection itself as the ``Wire*`` exceptions below, which ``procaudit.transport.psrp.classify`` maps;
* an exchange guard (the connector's deadline and cancellation) consulted before every exchange, handshake legs
  included, that caps its timeouts and decides whether a timeout was the deadline's.

CredSSP, certificate auth and proxies stay on pypsrp's own transport.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import ipaddress
import os
import select
import socket
import ssl
from pathlib import Path
from typing import Literal, Protocol

import certifi
import spnego
import spnego.channel_bindings
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from pypsrp.encryption import WinRMEncryption
from pypsrp.exceptions import AuthenticationError, WinRMTransportError

LeanAuth = Literal["negotiate", "kerberos", "ntlm"]
LEAN_AUTHS: tuple[LeanAuth, ...] = ("negotiate", "kerberos", "ntlm")

_MAX_HEAD = 65536
#: A WinRM answer is at most MaxEnvelopeSizekb (default 500 KB) plus framing; anything far larger is not WinRM.
_MAX_BODY = 64 * 1024 * 1024


def _offered_token(header: str, scheme: str) -> bytes:
    """The token the host sent after ``scheme`` in a WWW-Authenticate value ("Negotiate <base64>, ..."), decoded;
    empty when there is none. Tokens are base64, so they hold no comma."""
    for challenge in header.split(","):
        name, _, token = challenge.strip().partition(" ")
        if name.lower() == scheme.lower() and token.strip():
            try:
                return base64.b64decode(token.strip(), validate=True)
            except binascii.Error as exc:
                raise AuthenticationError(f"the host sent a {scheme} token that is not base64") from exc
    return b""


def _boundary(content_type: str) -> str | None:
    """The ``boundary`` parameter of a Content-Type value, unquoted."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "boundary":
            return value.strip().strip('"')
    return None


class WireError(Exception):
    """The connection itself failed (no HTTP answer to classify)."""


class WireConnectTimeout(WireError):
    """The TCP connect (or the TLS handshake) did not finish within the connect timeout."""


class WireConnectFailed(WireError):
    """The TCP connection could not be made: the cause (``__cause__``) says why (name, refused, ...)."""


class WireReadTimeout(WireError):
    """The host accepted the request but sent no (complete) answer within the read timeout."""


class WireCut(WireError):
    """The connection closed or was reset; ``mid_response`` if the answer's headers had arrived."""

    def __init__(self, message: str, *, mid_response: bool) -> None:
        super().__init__(message)
        self.mid_response = mid_response


class ExchangeGuard(Protocol):
    """The connector's deadline and cancellation, applied to each HTTP exchange."""

    def limits(self, connect: float, read: float) -> tuple[float, float]:
        """The timeouts this exchange may use; raises to stop before the exchange (cancelled, deadline spent)."""
        ...

    def timed_out(self) -> None:
        """Called when an exchange timed out: raises if the deadline is what ran out."""
        ...


class _NoGuard:
    def limits(self, connect: float, read: float) -> tuple[float, float]:
        return connect, read

    def timed_out(self) -> None:
        return None


@functools.lru_cache(maxsize=16)
def tls_context(validate: bool, ca_bundle: str | None) -> ssl.SSLContext:
    """One client context per trust setting, shared by every connection (loading a CA bundle costs milliseconds)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not validate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    bundle = ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    if Path(bundle).is_dir():
        context.load_verify_locations(capath=bundle)
    else:
        context.load_verify_locations(cafile=bundle)
    return context


def certificate_hash(der: bytes) -> bytes:
    """The RFC 5929 tls-server-end-point hash: the certificate's signature hash, SHA-256 for MD5/SHA-1/unknown."""
    algorithm: hashes.HashAlgorithm | None = None
    with contextlib.suppress(UnsupportedAlgorithm, ValueError):
        algorithm = x509.load_der_x509_certificate(der).signature_hash_algorithm
    if algorithm is None or algorithm.name in ("md5", "sha1"):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(der)
    return digest.finalize()


class _Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class WinRMHttp:
    """Drop-in for pypsrp's ``WSMan.transport`` (Negotiate/Kerberos/NTLM, no proxy). Not thread-safe."""

    def __init__(
        self,
        address: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        auth: LeanAuth,
        username: str | None,
        password: str | None,
        service: str = "HTTP",
        hostname_override: str | None = None,
        connection_timeout: float = 30.0,
        read_timeout: float = 30.0,
        guard: ExchangeGuard | None = None,
    ) -> None:
        if auth not in LEAN_AUTHS:
            raise ValueError(f"the lean WinRM transport does not do {auth!r} auth")
        self.address = address
        self.port = port
        self.tls = tls
        self.auth = auth
        self.username = username
        self.password = password
        self.service = service
        self.hostname_override = hostname_override
        self.connection_timeout = connection_timeout
        self.read_timeout = read_timeout
        self.guard: ExchangeGuard = guard or _NoGuard()
        self.wrap_required = tls is None  # over HTTP every body is encrypted; over HTTPS TLS protects it
        host = address
        with contextlib.suppress(ValueError):
            host = f"[{ipaddress.IPv6Address(address).compressed}]"
        self.endpoint = f"{'https' if tls else 'http'}://{host}:{port}/wsman"
        self._host_header = f"{host}:{port}"
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._authenticated = False  # this connection carries a completed logon
        self._encryption: WinRMEncryption | None = None

    # -- pypsrp's transport interface --------------------------------------------------------------------
    def send(
        self,
        message: bytes,
        *,
        retries_on_read_timeout: int = 0,
        timeout: float | tuple[float, float] | None = None,
    ) -> bytes:
        """Send one envelope and return the answer's (decrypted) body; pypsrp's errors on an HTTP error status."""
        if timeout is None:
            timeouts = (self.connection_timeout, self.read_timeout)
        elif isinstance(timeout, tuple):
            timeouts = (float(timeout[0]), float(timeout[1]))
        else:
            timeouts = (float(timeout), float(timeout))
        attempt = 0
        while True:
            try:
                return self._send_once(message, timeouts)
            except WireReadTimeout:
                # pypsrp resends a timed-out Receive (the host serves the same data again) on a fresh logon.
                if attempt >= retries_on_read_timeout:
                    raise
                attempt += 1
                self._drop()

    def close(self) -> None:
        self._drop()

    # -- one envelope ------------------------------------------------------------------------------------
    def _send_once(self, message: bytes, timeouts: tuple[float, float]) -> bytes:
        self._connect_if_needed(timeouts)
        if self.wrap_required:
            if self._encryption is None:
                self._logon(b"", timeouts)
            assert self._encryption is not None
            kind, payload = self._encryption.wrap_message(message)
            content_type = f'{kind};protocol="{self._encryption.protocol}";boundary="Encrypted Boundary"'
            response = self._exchange(payload, content_type, None, timeouts)
        else:
            content_type = "application/soap+xml;charset=UTF-8"
            if self._authenticated:
                response = self._exchange(message, content_type, None, timeouts)
            else:
                response = self._logon(message, timeouts, content_type)
        try:
            return self._answer(response)
        finally:
            if response.headers.get("connection", "").lower() == "close":
                self._drop()  # the logon belonged to that connection: the next envelope authenticates a new one

    def _answer(self, response: _Response) -> bytes:
        content_type = response.headers.get("content-type", "")
        body = response.body
        if content_type.startswith(("multipart/encrypted;", "multipart/x-multi-encrypted;")):
            boundary = _boundary(content_type)
            if self._encryption is None or boundary is None:
                raise WinRMTransportError("http", response.status, "an encrypted answer without a security context")
            body = self._encryption.unwrap_message(body, boundary)
        if response.status == 200:
            return body
        if response.status == 401:
            self._drop()
            raise AuthenticationError(f"{self.address} refused the {self.auth} logon of {self.username}")
        return self._failed(response.status, body)

    @staticmethod
    def _failed(status: int, body: bytes) -> bytes:
        raise WinRMTransportError("http", status, body.decode("utf-8", "replace") if body else "")

    # -- authentication ----------------------------------------------------------------------------------
    def _logon(self, body: bytes, timeouts: tuple[float, float], content_type: str | None = None) -> _Response:
        """Authenticate this connection as pypsrp's HTTPNegotiateAuth does; returns the last leg's answer."""
        response = self._exchange(body, content_type, None, timeouts)
        if response.status != 401:
            return response  # the listener did not ask for a logon (an anonymous endpoint): nothing to set up
        offered = response.headers.get("www-authenticate", "")
        matched = [p for p in ("Negotiate", "Kerberos", "NTLM") if p.upper() in offered.upper()]
        if not matched:
            raise AuthenticationError(
                f"{self.address} offers no Negotiate, Kerberos or NTLM logon (it offers: {offered or 'nothing'})"
            )
        label = matched[0]
        provider: str = self.auth
        if label.lower() != self.auth:
            if self.auth == "negotiate":
                provider = label.lower()
            elif label.lower() != "negotiate":
                raise ValueError(f"the host offers {label} logons, which --auth {self.auth} cannot use")
        bindings = None
        if isinstance(self._sock, ssl.SSLSocket):
            certificate = self._sock.getpeercert(True)
            if certificate:
                bindings = spnego.channel_bindings.GssChannelBindings(
                    application_data=b"tls-server-end-point:" + certificate_hash(certificate)
                )
        context = spnego.client(
            self.username,
            self.password,
            hostname=self.hostname_override or self.address,
            service=self.service,
            channel_bindings=bindings,
            context_req=spnego.ContextReq.default,
            protocol=provider,
            options=spnego.NegotiateOptions.wrapping_winrm if self.wrap_required else spnego.NegotiateOptions.none,
        )
        out_token = context.step()
        while not context.complete or out_token is not None:
            header = f"{label} {base64.b64encode(out_token or b'').decode()}"
            response = self._exchange(body, content_type, header, timeouts)
            in_token = _offered_token(response.headers.get("www-authenticate", ""), label)
            if not in_token:
                break
            out_token = context.step(in_token)
        if response.status == 401:
            self._drop()
            raise AuthenticationError(f"{self.address} refused the {self.auth} logon of {self.username}")
        self._authenticated = True
        if self.wrap_required:
            protocol = WinRMEncryption.KERBEROS if label.lower() == "kerberos" else WinRMEncryption.SPNEGO
            self._encryption = WinRMEncryption(context, protocol)
        return response

    # -- HTTP/1.1 on one socket --------------------------------------------------------------------------
    def _connect_if_needed(self, timeouts: tuple[float, float]) -> None:
        if self._sock is not None and not self._stale(self._sock):
            return
        self._drop()
        connect, _read = self.guard.limits(*timeouts)
        try:
            raw = socket.create_connection((self.address, self.port), timeout=connect)
        except TimeoutError as exc:
            self.guard.timed_out()
            raise WireConnectTimeout(f"connect to {self.address}:{self.port} timed out") from exc
        except OSError as exc:
            raise WireConnectFailed(f"cannot connect to {self.address}:{self.port}: {exc}") from exc
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is None:
            self._sock = raw
            return
        try:
            self._sock = self.tls.wrap_socket(raw, server_hostname=self.address)
        except TimeoutError as exc:
            raw.close()
            self.guard.timed_out()
            raise WireConnectTimeout(f"TLS handshake with {self.address}:{self.port} timed out") from exc
        except ssl.SSLError:
            raw.close()
            raise
        except OSError as exc:
            raw.close()
            raise WireCut(
                f"{self.address}:{self.port} closed the connection during the TLS handshake", mid_response=False
            ) from exc

    @staticmethod
    def _stale(sock: socket.socket) -> bool:
        """An idle keep-alive connection the host has closed (or that holds bytes nobody asked for)."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        # Readable: the host closed it, or (TLS 1.3) a session ticket record arrived after the handshake.
        timeout = sock.gettimeout()
        sock.setblocking(False)
        try:
            # Closed (b"") or application data nobody asked for: either way this connection is done.
            sock.recv(1) if isinstance(sock, ssl.SSLSocket) else sock.recv(1, socket.MSG_PEEK)
            return True
        except (ssl.SSLWantReadError, BlockingIOError):
            return False  # TLS records without application data: the connection is fine
        except OSError:
            return True
        finally:
            sock.settimeout(timeout)

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._buffer = b""
        self._authenticated = False
        self._encryption = None

    def _exchange(
        self, body: bytes, content_type: str | None, authorization: str | None, timeouts: tuple[float, float]
    ) -> _Response:
        self._connect_if_needed(timeouts)
        sock = self._sock
        assert sock is not None
        _connect, read = self.guard.limits(*timeouts)
        head = (
            f"POST /wsman HTTP/1.1\r\nHost: {self._host_header}\r\nUser-Agent: procaudit\r\n"
            "Accept-Encoding: identity\r\nAccept: */*\r\nConnection: Keep-Alive\r\n"
        )
        if content_type is not None:
            head += f"Content-Type: {content_type}\r\n"
        if authorization is not None:
            head += f"Authorization: {authorization}\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        sock.settimeout(read)
        try:
            sock.sendall(head.encode("latin-1") + body)
        except TimeoutError as exc:
            self._drop()
            self.guard.timed_out()
            raise WireReadTimeout(f"{self.address}:{self.port} did not take the request") from exc
        except OSError as exc:
            self._drop()
            raise WireCut(f"{self.address}:{self.port} closed the connection", mid_response=False) from exc
        return self._read_response(sock)

    def _read_response(self, sock: socket.socket) -> _Response:
        headed = False
        try:
            while b"\r\n\r\n" not in self._buffer:
                if len(self._buffer) > _MAX_HEAD:
                    raise WireCut("the answer's headers never ended", mid_response=False)
                self._fill(sock, headed)
            head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
            headed = True
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise WireCut(f"not an HTTP answer: {lines[0][:60]!r}", mid_response=False)
            status = int(parts[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                key = name.strip().lower()
                value = value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            body = self._read_body(sock, headers, status)
        except TimeoutError as exc:
            self._drop()
            self.guard.timed_out()
            raise WireReadTimeout(f"{self.address}:{self.port} did not answer in time") from exc
        except WireCut:
            self._drop()
            raise
        except ValueError as exc:  # a length or chunk size that is not a number
            self._drop()
            raise WireCut(f"{self.address}:{self.port} sent a malformed HTTP answer", mid_response=headed) from exc
        except OSError as exc:  # reset, or a TLS record cut short
            self._drop()
            raise WireCut(f"{self.address}:{self.port} reset the connection", mid_response=headed) from exc
        return _Response(status, headers, body)

    def _read_body(self, sock: socket.socket, headers: dict[str, str], status: int) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked(sock)
        length_text = headers.get("content-length")
        if length_text is not None:
            length = int(length_text.split(",")[0].strip())
            if not 0 <= length <= _MAX_BODY:
                raise WireCut(f"{self.address}:{self.port} announced a {length}-byte answer", mid_response=True)
            while len(self._buffer) < length:
                self._fill(sock, True)
            body, self._buffer = self._buffer[:length], self._buffer[length:]
            return body
        if status in (204, 304) or 100 <= status < 200:
            return b""
        while True:  # no length: the body ends when the host closes the connection
            if len(self._buffer) > _MAX_BODY:
                raise WireCut(f"{self.address}:{self.port} sent an answer over {_MAX_BODY} bytes", mid_response=True)
            try:
                self._fill(sock, True)
            except WireCut:
                body, self._buffer = self._buffer, b""
                headers["connection"] = "close"
                return body

    def _read_chunked(self, sock: socket.socket) -> bytes:
        parts: list[bytes] = []
        while True:
            while b"\r\n" not in self._buffer:
                self._fill(sock, True)
            line, _, self._buffer = self._buffer.partition(b"\r\n")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size < 0 or size + sum(map(len, parts)) > _MAX_BODY:
                raise WireCut(f"{self.address}:{self.port} sent an answer over {_MAX_BODY} bytes", mid_response=True)
            if size == 0:
                while b"\r\n" not in self._buffer:  # trailers end with an empty line
                    self._fill(sock, True)
                trailer, _, self._buffer = self._buffer.partition(b"\r\n")
                while trailer:
                    while b"\r\n" not in self._buffer:
                        self._fill(sock, True)
                    trailer, _, self._buffer = self._buffer.partition(b"\r\n")
                return b"".join(parts)
            while len(self._buffer) < size + 2:
                self._fill(sock, True)
            parts.append(self._buffer[:size])
            self._buffer = self._buffer[size + 2 :]

    def _fill(self, sock: socket.socket, headed: bool) -> None:
        chunk = sock.recv(262144)
        if not chunk:
            raise WireCut(
                f"{self.address}:{self.port} closed the connection" + (" mid-response" if headed else ""),
                mid_response=headed,
            )
        self._buffer += chunk
