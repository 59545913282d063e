"""The lab's HTTP listener as a raw client sees it: framing errors answered, not hung on; schemes as enabled."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from procaudit.errors import UserInputError
from procaudit.lab.runtime import Lab, address_for, lab_credentials

from .conftest import LabHandle


def exchange(lab: LabHandle, request: bytes) -> tuple[int, list[tuple[str, str]], bool]:
    """Send raw bytes to lab-ready-01 over TLS; return the status, the headers and whether the server closed."""
    endpoint = lab.endpoint("lab-ready-01")
    context = ssl.create_default_context(cafile=str(lab.lab.ca_bundle))
    context.check_hostname = False
    with (
        socket.create_connection((endpoint.address, endpoint.port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        tls.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
        head = data.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        headers = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in head[1:])]
        try:
            closed = tls.recv(1) == b""
        except (OSError, ssl.SSLError):
            closed = True
    return int(head[0].split(" ")[1]), headers, closed


@pytest.mark.parametrize(
    ("length_header", "status"),
    [
        ("", 411),
        ("Content-Length: ten\r\n", 400),
        ("Content-Length: -5\r\n", 400),
        ("Content-Length: 99999999\r\n", 413),
    ],
)
def test_bad_content_length_is_answered_and_the_connection_closed(
    fault_lab: LabHandle, length_header: str, status: int
) -> None:
    request = f"POST /wsman HTTP/1.1\r\nHost: lab\r\n{length_header}\r\n".encode()
    code, headers, closed = exchange(fault_lab, request)
    assert (code, closed) == (status, True)
    assert ("connection", "close") in headers


def test_the_challenge_offers_only_the_enabled_schemes(fault_lab: LabHandle) -> None:
    code, headers, _closed = exchange(fault_lab, b"POST /wsman HTTP/1.1\r\nHost: lab\r\nContent-Length: 0\r\n\r\n")
    assert code == 401
    assert [v for k, v in headers if k == "www-authenticate"] == ["Negotiate", "Kerberos"]  # CredSSP is off


def test_a_lab_that_fails_to_start_leaves_nothing_behind(tmp_path: Path) -> None:
    lab = Lab(["ready", "ready"], credentials=lab_credentials())
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind((address_for(lab.subnet, 1), lab.port))  # the second host's address is taken
    try:
        with pytest.raises(UserInputError, match="in use"):
            lab.start()
    finally:
        blocker.close()
    assert not lab.workdir.exists()
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind((address_for(lab.subnet, 0), lab.port))  # the first host's listener was closed
    probe.close()
