"""The lab's certificates: a lab CA, a server certificate per host, client certificates for certificate auth.

A WinRM HTTPS listener on Windows presents a certificate whose subject alternative names hold the host's DNS
name (and whatever else the administrator enrolled); clients validate it against their trust store. The lab
does the same with its own CA, so the default transport (HTTPS with validation) is exercised for real: the
inventory a lab writes names the CA file as ``ca_bundle``. Each server certificate names the host's short
name, its FQDN and its loopback address (an IP SAN: inventories dial addresses).

Faults a host can show on its certificate (``--fault HOST=tls-...``):
``tls-mismatch``  the certificate names another host;
``tls-expired``   the certificate expired yesterday;
``tls-untrusted`` the certificate is issued by a CA that is not in the lab's bundle.

Keys and certificates live in the lab's private directory (0700, files 0600) and are made when a host first
accepts a TLS connection, so a lab of thousands of hosts does not pay for certificates nobody asks for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import ssl
import threading
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TlsVariant = Literal["valid", "mismatch", "expired", "untrusted"]

UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")  # Microsoft's User Principal Name otherName
_DAY = dt.timedelta(days=1)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _der_utf8(text: str) -> bytes:
    """DER UTF8String, the encoding of the UPN inside an otherName."""
    raw = text.encode("utf-8")
    if len(raw) < 0x80:
        return b"\x0c" + bytes([len(raw)]) + raw
    if len(raw) < 0x100:
        return b"\x0c\x81" + bytes([len(raw)]) + raw
    return b"\x0c\x82" + len(raw).to_bytes(2, "big") + raw


def upn_of(certificate_der: bytes) -> str | None:
    """The UPN in a certificate's subject alternative names, as Windows' certificate mapping reads it."""
    cert = x509.load_der_x509_certificate(certificate_der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for other in san.get_values_for_type(x509.OtherName):
        value = other.value if other.type_id == UPN_OID else b""
        if value[:1] == b"\x0c" and len(value) > 2:
            if value[1] < 0x80:
                return value[2 : 2 + value[1]].decode("utf-8", "replace")
            width = value[1] & 0x7F
            length = int.from_bytes(value[2 : 2 + width], "big")
            return value[2 + width : 2 + width + length].decode("utf-8", "replace")
    return None


class _Authority:
    """A CA key and certificate."""

    def __init__(self, common_name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )  # keyCertSign, cRLSign
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        common_name: str,
        san: list[x509.GeneralName],
        usage: x509.ObjectIdentifier,
        key: ec.EllipticCurvePrivateKey,
        *,
        expired: bool = False,
    ) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        start, end = (now - 30 * _DAY, now - _DAY) if expired else (now - _DAY, now + 30 * _DAY)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )


class LabPki:
    """The lab CA and everything it issues, under ``directory`` (created private)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self._ca = _Authority("procaudit lab CA")
        self._rogue: _Authority | None = None
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())  # one key for every host: certificates are cheap
        self._lock = threading.Lock()
        self.ca_path = self.directory / "lab-ca.pem"
        _write_private(self.ca_path, self._ca.cert.public_bytes(serialization.Encoding.PEM))
        self._leaf_key_path = self.directory / "host-key.pem"
        _write_private(self._leaf_key_path, _key_pem(self._leaf_key))

    def server(self, name: str, fqdn: str, address: str, variant: TlsVariant = "valid") -> HostTls:
        return HostTls(self, name, fqdn, address, variant)

    def _server_files(self, name: str, fqdn: str, address: str, variant: TlsVariant) -> tuple[Path, bytes]:
        names: list[x509.GeneralName]
        if variant == "mismatch":  # a certificate that belongs to another machine
            names = [x509.DNSName("wrong-host"), x509.DNSName(f"wrong-host.{fqdn.partition('.')[2]}")]
            names.append(x509.IPAddress(ipaddress.ip_address("127.255.255.254")))
            common_name = "wrong-host"
        else:
            names = [x509.DNSName(name), x509.DNSName(fqdn), x509.IPAddress(ipaddress.ip_address(address))]
            common_name = fqdn
        with self._lock:
            authority = self._ca
            if variant == "untrusted":
                if self._rogue is None:
                    self._rogue = _Authority("procaudit lab ROGUE CA (not in the bundle)")
                authority = self._rogue
        cert = authority.issue(
            common_name, names, ExtendedKeyUsageOID.SERVER_AUTH, self._leaf_key, expired=variant == "expired"
        )
        path = self.directory / f"host-{name}.pem"
        _write_private(path, cert.public_bytes(serialization.Encoding.PEM))
        return path, cert.public_bytes(serialization.Encoding.DER)

    def client(self, upn: str, stem: str = "client") -> tuple[Path, Path]:
        """A client certificate for WinRM certificate auth (UPN in the SAN); returns (cert_pem, key_pem)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._ca.issue(
            upn.partition("@")[0], [x509.OtherName(UPN_OID, _der_utf8(upn))], ExtendedKeyUsageOID.CLIENT_AUTH, key
        )
        cert_path, key_path = self.directory / f"{stem}-cert.pem", self.directory / f"{stem}-key.pem"
        _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        _write_private(key_path, _key_pem(key))
        return cert_path, key_path


class HostTls:
    """One host's TLS side, made on first use: the server context and its channel-binding value."""

    def __init__(self, pki: LabPki, name: str, fqdn: str, address: str, variant: TlsVariant) -> None:
        self._pki = pki
        self.name, self.fqdn, self.address, self.variant = name, fqdn, address, variant
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        self._binding = b""

    def _build(self) -> None:
        cert_path, der = self._pki._server_files(self.name, self.fqdn, self.address, self.variant)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, self._pki._leaf_key_path)
        # Certificate auth: ask for a client certificate, accept connections without one (like a WinRM
        # listener with certificate auth enabled), and trust only the lab CA for the ones that come.
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cafile=str(self._pki.ca_path))
        # RFC 5929 tls-server-end-point: the hash of the certificate, SHA-256 for a SHA-256 signature.
        self._binding = b"tls-server-end-point:" + hashlib.sha256(der).digest()
        self._context = context

    @property
    def context(self) -> ssl.SSLContext:
        with self._lock:
            if self._context is None:
                self._build()
            assert self._context is not None
            return self._context

    @property
    def channel_binding(self) -> bytes:
        """The application data of the channel bindings a client on this listener computes (and Windows checks)."""
        _ = self.context
        return self._binding


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
