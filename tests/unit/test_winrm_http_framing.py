"""The lean WinRM transport's HTTP/1.1 reader on the framings the lab never sends (chunked, read-to-close)."""

from __future__ import annotations

import socket

import pytest
from pypsrp.exceptions import AuthenticationError

from procaudit.transport.winrm_http import WinRMHttp, WireCut, _boundary, _offered_token


def _read(raw: bytes, *, close: bool = True) -> tuple[int, dict[str, str], bytes]:
    transport = WinRMHttp("127.0.0.1", 5985, tls=None, auth="ntlm", username="u", password="p")
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(raw)
        if close:
            theirs.shutdown(socket.SHUT_WR)
        ours.settimeout(5)
        response = transport._read_response(ours)
        return response.status, response.headers, response.body
    finally:
        ours.close()
        theirs.close()


def test_chunked_body_with_trailers() -> None:
    raw = (
        b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/soap+xml\r\n\r\n"
        b"5\r\n<s:En\r\n7;ext=1\r\nvelope/\r\n1\r\n>\r\n0\r\nX-Trailer: y\r\n\r\n"
    )
    status, headers, body = _read(raw, close=False)
    assert (status, body) == (500, b"<s:Envelope/>")
    assert headers["content-type"] == "application/soap+xml"


def test_body_without_a_length_ends_with_the_connection() -> None:
    status, headers, body = _read(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nall of it")
    assert (status, body, headers["connection"]) == (200, b"all of it", "close")


def test_repeated_headers_are_joined_as_requests_joins_them() -> None:
    raw = (
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: Kerberos\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    status, headers, _ = _read(raw, close=False)
    assert status == 401 and headers["www-authenticate"] == "Negotiate, Kerberos"


@pytest.mark.parametrize(
    ("raw", "mid"),
    [
        (b"", False),
        (b"HTTP/1.1 200 OK\r\nContent-Len", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", True),
    ],
)
def test_a_connection_that_ends_early_is_cut(raw: bytes, mid: bool) -> None:
    with pytest.raises(WireCut) as info:
        _read(raw)
    assert info.value.mid_response is mid


def test_not_http_is_cut_before_any_answer() -> None:
    with pytest.raises(WireCut, match="not an HTTP answer") as info:
        _read(b"\x15\x03\x03\x00\x02\x02\x46\r\n\r\n")
    assert not info.value.mid_response


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n0123456789",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFF\r\nab\r\n",
    ],
)
def test_a_malformed_or_oversized_answer_is_cut_not_a_crash(raw: bytes) -> None:
    with pytest.raises(WireCut):
        _read(raw, close=False)


@pytest.mark.parametrize(
    ("header", "scheme", "token"),
    [
        ("Negotiate YWJj", "Negotiate", b"abc"),
        ('Basic realm="WSMAN, x", Negotiate YWJj, Kerberos', "negotiate", b"abc"),
        ("Negotiate, Kerberos", "Negotiate", b""),
        ("NTLM YWJj", "Negotiate", b""),
    ],
)
def test_the_token_for_the_scheme_in_use_is_read_from_www_authenticate(header: str, scheme: str, token: bytes) -> None:
    assert _offered_token(header, scheme) == token


def test_a_token_that_is_not_base64_is_an_authentication_error() -> None:
    with pytest.raises(AuthenticationError, match="not base64"):
        _offered_token("Negotiate ab$c", "Negotiate")


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        (
            'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"',
            "Encrypted Boundary",
        ),
        ("multipart/encrypted; Boundary=plain", "plain"),
        ("multipart/encrypted;protocol=x", None),
    ],
)
def test_the_boundary_parameter_is_read_from_the_content_type(content_type: str, boundary: str | None) -> None:
    assert _boundary(content_type) == boundary
