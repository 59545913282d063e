"""HTTPS for real: the lab CA, per-host certificates, and every certificate failure from a real TLS handshake."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from procaudit.errors import ConnectionLostError, TlsError
from procaudit.lab.kdc import host_fqdn
from procaudit.ping import GET_HOST_IDENTITY, NoParams
from procaudit.transport.psrp import PsrpConnector

from .conftest import LabHandle, start_lab
from .test_cli import creds, run_cli


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    yield from start_lab(
        tmp_path_factory.mktemp("tls-lab"),
        ["ready", "ready", "dc", "rds", "workstation"],
        ["lab-dc-01=tls-mismatch", "lab-rds-01=tls-expired", "lab-workstation-01=tls-untrusted"],
    )


@pytest.fixture(scope="module")
def http_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    yield from start_lab(tmp_path_factory.mktemp("http-lab"), ["ready"], transport="http")


def presented_certificate(handle: LabHandle, name: str) -> x509.Certificate:
    endpoint = handle.endpoint(name)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((endpoint.address, endpoint.port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der
    return x509.load_der_x509_certificate(der)


def test_lab_inventory_uses_https_with_the_lab_ca(tls_lab: LabHandle) -> None:
    document = yaml.safe_load(tls_lab.inventory.read_text())
    assert document["vars"]["transport"] == "https" and document["vars"]["port"] == 5986
    bundle = Path(document["vars"]["ca_bundle"])
    assert bundle == tls_lab.lab.ca_bundle and bundle.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert bundle.stat().st_mode & 0o777 == 0o600 and bundle.parent.stat().st_mode & 0o777 == 0o700
    target = tls_lab.target("lab-ready-01")
    assert target.options.scheme == "https" and target.options.cert_validation and target.options.ca_bundle == bundle
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in bundle.parent.iterdir())


def test_host_certificate_names_the_host_and_its_address(tls_lab: LabHandle) -> None:
    cert = presented_certificate(tls_lab, "lab-ready-01")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    address = tls_lab.endpoint("lab-ready-01").address
    assert set(san.get_values_for_type(x509.DNSName)) == {"lab-ready-01", host_fqdn("lab-ready-01")}
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(address)]
    ca = x509.load_pem_x509_certificate(tls_lab.lab.ca_bundle.read_bytes())  # type: ignore[union-attr]
    assert cert.issuer == ca.subject


def test_default_transport_validates_and_runs_powershell(tls_lab: LabHandle) -> None:
    endpoint = tls_lab.endpoint("lab-ready-01")
    endpoint.stats.reset()
    with tls_lab.connector("lab-ready-01") as conn:
        identity = conn.run(GET_HOST_IDENTITY, NoParams())
    assert identity.computer_name == "LAB-READY-01"
    assert endpoint.stats.connections >= 1 and endpoint.stats.pipelines == 1


def test_name_mismatch_is_classified_and_names_what_the_certificate_holds(tls_lab: LabHandle) -> None:
    address = tls_lab.endpoint("lab-dc-01").address
    with pytest.raises(TlsError) as info, tls_lab.connector("lab-dc-01") as conn:
        conn.open()
    message = str(info.value)
    assert f"does not name '{address}'" in message and "it names wrong-host" in message
    assert "SAN" in message and info.value.kind == "tls"


def test_expired_certificate_is_classified_with_its_date(tls_lab: LabHandle) -> None:
    cert = presented_certificate(tls_lab, "lab-rds-01")
    with pytest.raises(TlsError) as info, tls_lab.connector("lab-rds-01") as conn:
        conn.open()
    assert f"expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC" in str(info.value)
    assert "renew" in str(info.value)


def test_untrusted_issuer_is_classified_and_points_to_ca_bundle(tls_lab: LabHandle) -> None:
    with pytest.raises(TlsError) as info, tls_lab.connector("lab-workstation-01") as conn:
        conn.open()
    message = str(info.value)
    assert "ROGUE CA" in message and "is not trusted" in message and "--ca-bundle" in message


def test_without_the_lab_ca_a_valid_host_is_untrusted_and_ca_bundle_fixes_it(tls_lab: LabHandle) -> None:
    target = tls_lab.target("lab-ready-02")
    bare = dataclasses.replace(target, options=dataclasses.replace(target.options, ca_bundle=None))
    with (
        pytest.raises(TlsError, match=r"procaudit lab CA.* is not trusted"),
        PsrpConnector(bare, tls_lab.credentials) as c,
    ):
        c.open()
    with PsrpConnector(target, tls_lab.credentials) as conn:
        assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-02"


def test_no_verify_connects_even_to_an_expired_certificate(tls_lab: LabHandle) -> None:
    with tls_lab.connector("lab-rds-01", no_verify=True) as conn:
        assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-RDS-01"


def test_plain_http_against_the_https_listener(tls_lab: LabHandle) -> None:
    with (
        pytest.raises(TlsError, match="is an HTTPS listener; we spoke plain HTTP") as info,
        tls_lab.connector("lab-ready-01", transport="http", port=5986) as conn,
    ):
        conn.open()
    assert "--transport https" in str(info.value)


def test_https_against_the_http_listener(http_lab: LabHandle) -> None:
    with (
        pytest.raises(TlsError, match="does not speak TLS"),
        http_lab.connector("lab-ready-01", transport="https", port=5985) as conn,
    ):
        conn.open()


def test_http_lab_serves_5985_with_message_encryption(http_lab: LabHandle) -> None:
    document = yaml.safe_load(http_lab.inventory.read_text())
    assert (document["vars"]["transport"], document["vars"]["port"]) == ("http", 5985)
    assert "ca_bundle" not in document["vars"]
    with http_lab.connector("lab-ready-01") as conn:
        assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-01"


def test_a_cut_connection_without_tls_is_still_dropped(http_lab: LabHandle) -> None:
    """The HTTPS probe only fires when the port really speaks TLS: a reset elsewhere stays 'dropped'."""
    from procaudit.transport.psrp import classify

    target = http_lab.target("lab-ready-01")
    import requests

    reset = requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))
    assert isinstance(classify(reset, target, "connecting"), ConnectionLostError)


# -- the command line ---------------------------------------------------------------------------------------
def _without_ca(handle: LabHandle, tmp_path: Path) -> Path:
    document = yaml.safe_load(handle.inventory.read_text())
    del document["vars"]["ca_bundle"]
    path = tmp_path / "no-ca.yml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_cli_untrusted_then_ca_bundle_then_no_verify(tls_lab: LabHandle, tmp_path: Path) -> None:
    inventory = str(_without_ca(tls_lab, tmp_path))
    base = ["ping", "-i", inventory, "--limit", "lab-ready-01", "-f", "json"]
    untrusted = run_cli(*base, env=creds(tls_lab))
    assert untrusted.returncode == 3, untrusted.stderr
    host = json.loads(untrusted.stdout)["hosts"][0]
    assert host["error"]["kind"] == "tls" and "--ca-bundle" in host["error"]["message"]

    fixed = run_cli(*base, "--ca-bundle", str(tls_lab.lab.ca_bundle), env=creds(tls_lab))
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["hosts"][0]["status"] == "OK"

    unchecked = run_cli(*base, "--no-verify", env=creds(tls_lab))
    assert unchecked.returncode == 0, unchecked.stderr
    assert "warning:" in unchecked.stderr and "--no-verify" in unchecked.stderr
    assert "impersonate" in unchecked.stderr


def test_cli_classifies_every_certificate_fault(tls_lab: LabHandle) -> None:
    result = run_cli("ping", "-i", str(tls_lab.inventory), "-f", "json", env=creds(tls_lab))
    assert result.returncode == 3, result.stderr
    kinds = {h["host"]: (h["error"] or {}).get("kind", "ok") for h in json.loads(result.stdout)["hosts"]}
    assert kinds == {
        "lab-ready-01": "ok",
        "lab-ready-02": "ok",
        "lab-dc-01": "tls",
        "lab-rds-01": "tls",
        "lab-workstation-01": "tls",
    }
