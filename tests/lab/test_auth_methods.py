"""CredSSP and certificate auth, proven against the lab's acceptors (pyspnego's CredSSP server; TLS client auth)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pypsrp.encryption import WinRMEncryption

from procaudit.errors import AuthError, ProtocolError, TlsError
from procaudit.lab.pki import LabPki, upn_of
from procaudit.ping import GET_HOST_IDENTITY, NoParams
from procaudit.transport.base import Credentials
from procaudit.transport.psrp import PsrpConnector

from .conftest import LabHandle, start_lab


@pytest.fixture(scope="module")
def https_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    yield from start_lab(tmp_path_factory.mktemp("auth-https"), ["ready", "ready"], auth="certificate")


@pytest.fixture(scope="module")
def http_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    yield from start_lab(tmp_path_factory.mktemp("auth-http"), ["ready"], transport="http", auth="credssp")


def test_credssp_over_https_delegates_the_password(https_lab: LabHandle) -> None:
    endpoint = https_lab.endpoint("lab-ready-01")
    endpoint.stats.reset()
    with pytest.raises(AuthError), https_lab.connector("lab-ready-01", auth="credssp") as conn:
        conn.open()  # a certificate lab has CredSSP off, as WinRM does by default
    endpoint.auth_schemes = (*endpoint.auth_schemes, "CredSSP")  # Enable-WSManCredSSP -Role Server
    try:
        with https_lab.connector("lab-ready-01", auth="credssp") as conn:
            assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-01"
    finally:
        endpoint.auth_schemes = endpoint.auth_schemes[:-1]
    assert endpoint.stats.logons == {"credssp": 1} and not endpoint.stats.encrypted


def test_credssp_over_http_uses_credssp_message_encryption(http_lab: LabHandle) -> None:
    assert yaml.safe_load(http_lab.inventory.read_text())["vars"]["auth"] == "credssp"
    endpoint = http_lab.endpoint("lab-ready-01")
    endpoint.stats.reset()
    with http_lab.connector("lab-ready-01") as conn:
        assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-01"
    assert endpoint.stats.logons == {"credssp": 1}
    assert set(endpoint.stats.encrypted) == {WinRMEncryption.CREDSSP}


def test_credssp_wrong_password(http_lab: LabHandle) -> None:
    bad = Credentials(http_lab.credentials.username, "Not-The-Password-3")
    with pytest.raises(AuthError) as info, http_lab.connector("lab-ready-01", bad) as conn:
        conn.open()
    assert "CredSSP" in str(info.value) and "Not-The-Password-3" not in str(info.value)


def test_certificate_auth_maps_the_upn_to_the_account(https_lab: LabHandle) -> None:
    document = yaml.safe_load(https_lab.inventory.read_text())["vars"]
    assert document["auth"] == "certificate"
    cert, key = Path(document["certificate_pem"]), Path(document["certificate_key_pem"])
    assert key.stat().st_mode & 0o777 == 0o600
    account = https_lab.credentials.username.rpartition("\\")[2]
    from cryptography import x509

    assert upn_of(x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(_der())) == f"{account}@localhost"
    endpoint = https_lab.endpoint("lab-ready-02")
    endpoint.stats.reset()
    with PsrpConnector(https_lab.target("lab-ready-02"), None) as conn:  # no password at all
        assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-02"
    assert endpoint.stats.logons == {"certificate": 1}


def _der():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def test_certificate_without_a_mapping_is_an_auth_error(https_lab: LabHandle) -> None:
    endpoint = https_lab.endpoint("lab-ready-01")
    saved = dict(endpoint.certificate_map)
    endpoint.certificate_map.clear()
    try:
        with (
            pytest.raises(AuthError, match="did not map our client certificate") as info,
            PsrpConnector(https_lab.target("lab-ready-01"), None) as conn,
        ):
            conn.open()
        assert "ClientCertificate" in str(info.value)
    finally:
        endpoint.certificate_map.update(saved)


def test_certificate_auth_works_only_where_it_is_enabled(https_lab: LabHandle) -> None:
    endpoint = https_lab.endpoint("lab-ready-01")
    endpoint.certificate_auth = False  # Service/Auth/Certificate off, the mapping still in place
    try:
        with pytest.raises(AuthError), PsrpConnector(https_lab.target("lab-ready-01"), None) as conn:
            conn.open()
    finally:
        endpoint.certificate_auth = True


def test_certificate_from_a_foreign_ca_fails_the_handshake(https_lab: LabHandle, tmp_path: Path) -> None:
    cert, key = LabPki(tmp_path / "other").client("someone@localhost")
    target = https_lab.target("lab-ready-01")
    foreign = dataclasses.replace(
        target, options=dataclasses.replace(target.options, certificate_pem=cert, certificate_key_pem=key)
    )
    with pytest.raises(TlsError) as info, PsrpConnector(foreign, None) as conn:
        conn.open()
    assert "after we presented our client certificate: it does not trust its issuer" in str(info.value)


def test_certificate_auth_needs_https(https_lab: LabHandle) -> None:
    target = https_lab.target("lab-ready-01", transport="http", port=5985)
    with pytest.raises(ProtocolError, match="certificate auth works only over HTTPS"), PsrpConnector(target, None) as c:
        c.open()
