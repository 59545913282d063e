"""Start a lab: build hosts from profiles, give each its loopback address, serve WinRM, write an inventory.

By default a lab serves WinRM over HTTPS on 5986 with certificates from its own CA, and the inventory it
writes names that CA (``ca_bundle``), so clients use the default transport with certificate validation.
``transport="http"`` serves 5985 with message encryption instead. ``kerberos=True`` adds the lab realm
(``lab/kdc.py``): a service principal ``HTTP/<host>.procaudit.test`` per host, a user principal for the lab
account, and ``auth: kerberos`` with ``kerberos_hostname`` per host in the inventory.
"""

from __future__ import annotations

import errno
import random
import secrets
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml

from procaudit.errors import UserInputError
from procaudit.fsutil import atomic_write
from procaudit.lab.endpoint import DEFAULT_SCHEMES, CredentialStore, HostEndpoint, LabServer
from procaudit.lab.faults import FaultRule, faults_for
from procaudit.lab.kdc import REALM, LabKdc, host_fqdn
from procaudit.lab.model import LabHost, LabWorld
from procaudit.lab.pki import LabPki, TlsVariant
from procaudit.lab.profiles import DEMO_MIX, build_host
from procaudit.lab.scripts import make_executor
from procaudit.transport.base import Credentials

WINRM_HTTP_PORT = 5985
WINRM_HTTPS_PORT = 5986
LAB_USER = "LAB\\operator"

LabTransport = Literal["https", "http"]
LabAuth = Literal["ntlm", "negotiate", "kerberos", "credssp", "certificate"]
LAB_AUTHS: tuple[LabAuth, ...] = ("ntlm", "negotiate", "kerberos", "credssp", "certificate")
_TLS_FAULTS: dict[str, TlsVariant] = {
    "tls-mismatch": "mismatch",
    "tls-expired": "expired",
    "tls-untrusted": "untrusted",
}

_ROLE_GROUPS = {"dc": "dcs", "member": "servers", "rds": "rds", "workstation": "workstations", "scom": "scom"}


def lab_plan(count: int | None, profiles: list[str] | None) -> list[str]:
    """The profile of each lab host: one per profile, or ``count`` hosts cycling through the profiles."""
    chosen = profiles or DEMO_MIX
    total = count if count is not None else len(chosen)
    if total < 1:
        raise UserInputError("--count must be at least 1")
    return [chosen[i % len(chosen)] for i in range(total)]


def host_names(plan: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for profile in plan:
        seen[profile] = seen.get(profile, 0) + 1
        names.append(f"lab-{profile}-{seen[profile]:02d}")
    return names


def address_for(subnet: int, index: int) -> str:
    """127.<subnet>.<index // 250>.<index % 250 + 1>: up to 62,500 hosts per lab."""
    return f"127.{subnet}.{index // 250}.{index % 250 + 1}"


def lab_credentials() -> Credentials:
    """Credentials for a lab nobody configured: a fresh user and password (labs in one process share a store)."""
    return Credentials(f"{LAB_USER}-{secrets.token_hex(3)}", secrets.token_urlsafe(18))


@dataclass
class LabHostRuntime:
    host: LabHost
    endpoint: HostEndpoint


class Lab:
    """A running lab. Use as a context manager, or call ``start()`` / ``stop()``."""

    def __init__(
        self,
        plan: list[str],
        *,
        credentials: Credentials,
        faults: list[FaultRule] | None = None,
        subnet: int | None = None,
        port: int | None = None,
        transport: LabTransport = "https",
        auth: LabAuth | None = None,
        kerberos: bool = False,
    ) -> None:
        if transport not in ("https", "http"):
            raise UserInputError(f"lab transport must be https or http, not {transport!r}")
        self.credentials = credentials
        self.transport: LabTransport = transport
        self.kerberos = kerberos or auth == "kerberos"
        self.auth: LabAuth = auth or ("kerberos" if self.kerberos else "ntlm")
        if self.auth == "certificate" and transport != "https":
            raise UserInputError("certificate auth needs the HTTPS transport (WinRM maps client certificates on 5986)")
        self.port = port if port is not None else (WINRM_HTTPS_PORT if transport == "https" else WINRM_HTTP_PORT)
        if subnet:
            claim = claim_subnet(subnet, self.port)
            if claim is None:
                raise UserInputError(
                    f"lab addresses 127.{subnet}.x.x:{self.port} are in use; is another lab running? "
                    "choose another --subnet (0 picks a free one)"
                )
            self._claim = claim
        else:
            self._claim = free_subnet(self.port)
        self.subnet = self._claim.subnet
        self.workdir = Path(tempfile.mkdtemp(prefix="procaudit-lab-"))  # 0700: keys, certificates
        try:
            self.pki = LabPki(self.workdir / "pki") if transport == "https" else None
            self.kdc: LabKdc | None = None
            account = credentials.username.rpartition("\\")[2].partition("@")[0]
            self.principal: str | None = f"{account}@{REALM}" if self.kerberos else None
            self.client_certificate: tuple[Path, Path] | None = None
            self.hosts: dict[str, LabHostRuntime] = {}
            self.world = LabWorld()
            rules = faults or []
            for index, (name, profile) in enumerate(zip(host_names(plan), plan, strict=True)):
                host = build_host(profile, name)
                self.world.hosts[name] = host
                host_faults = faults_for(name, rules)
                address = address_for(self.subnet, index)
                kinds = {f.kind for f in host_faults}
                tls_faults = sorted(kinds & set(_TLS_FAULTS))
                if tls_faults and self.pki is None:
                    raise UserInputError(f"--fault {tls_faults[0]} needs the HTTPS transport")
                if "no-spn" in kinds and not self.kerberos:
                    raise UserInputError("--fault no-spn needs a Kerberos lab (--kerberos)")
                endpoint = HostEndpoint(
                    name=name,
                    address=address,
                    port=self.port,
                    executor=make_executor(host, host_faults, self.world),
                    faults=host_faults,
                    private_data={"PSVersionTable": {"PSVersion": host.os.ps_version}},
                    tls=self.pki.server(
                        name, host_fqdn(name), address, _TLS_FAULTS[tls_faults[0]] if tls_faults else "valid"
                    )
                    if self.pki is not None
                    else None,
                    # Only the lab's own scheme is enabled on top of WinRM's defaults (Negotiate, Kerberos).
                    auth_schemes=(*DEFAULT_SCHEMES, "CredSSP") if self.auth == "credssp" else DEFAULT_SCHEMES,
                    certificate_auth=self.auth == "certificate",
                )
                self.hosts[name] = LabHostRuntime(host, endpoint)
            unmatched = [r.pattern for r in rules if not any(faults_for(n, [r]) for n in self.hosts)]
            if unmatched:
                raise UserInputError(f"--fault host pattern(s) match no lab host: {', '.join(unmatched)}")
            if self.pki is not None and self.auth == "certificate":
                upn = (
                    f"{account}@localhost"  # Windows maps local accounts from certificates whose UPN is user@localhost
                )
                self.client_certificate = self.pki.client(upn)
                for runtime in self.hosts.values():
                    runtime.endpoint.certificate_map[upn.lower()] = credentials.username
            self.server = LabServer([rt.endpoint for rt in self.hosts.values()])
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._claim.release()
            raise

    def start(self) -> None:
        """Register the accounts, start the KDC (Kerberos labs) and serve; on failure nothing is left running."""
        try:
            self._start()
        except BaseException:
            self.stop()  # listeners bound so far, the accept thread, the work folder, the subnet claim
            raise

    def _start(self) -> None:
        CredentialStore.add(self.credentials.username, self.credentials.password)
        if self.kerberos:
            self.kdc = LabKdc.shared()
            self.principal = self.kdc.add_user(self.credentials.username, self.credentials.password)
            # A domain resolves the UPN for NTLM too (Negotiate falls back to it when Kerberos cannot be used).
            CredentialStore.add(self.principal, self.credentials.password)
            for name, runtime in self.hosts.items():
                if runtime.endpoint.fault("no-spn"):
                    self.kdc.remove_service(host_fqdn(name))
                else:
                    self.kdc.add_service(host_fqdn(name))
        try:
            self.server.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserInputError(
                    f"lab addresses 127.{self.subnet}.x.x:{self.port} are in use; is another lab running? "
                    "choose another --subnet"
                ) from None
            raise

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
        self._claim.release()

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def host(self, name: str) -> LabHost:
        return self.hosts[name].host

    @property
    def ca_bundle(self) -> Path | None:
        """The lab CA's PEM file (HTTPS labs): what ``--ca-bundle`` / ``ca_bundle`` must name to trust the lab."""
        return self.pki.ca_path if self.pki is not None else None

    def inventory_document(self) -> dict[str, object]:
        groups: dict[str, dict[str, object]] = {}
        for name, runtime in self.hosts.items():
            group = _ROLE_GROUPS[runtime.host.role]
            hosts = groups.setdefault(group, {"hosts": {}})["hosts"]
            assert isinstance(hosts, dict)
            entry: dict[str, object] = {"address": runtime.endpoint.address, "lab_profile": runtime.host.profile}
            if self.kerberos:
                # Lab names do not resolve: dial the address, name the SPN's host explicitly (pypsrp's override).
                entry["kerberos_hostname"] = host_fqdn(name)
            hosts[name] = entry
        variables: dict[str, object] = {"transport": self.transport, "port": self.port, "auth": self.auth}
        if self.ca_bundle is not None:
            variables["ca_bundle"] = str(self.ca_bundle)
        if self.kerberos:
            variables["user"] = self.principal
        if self.auth == "certificate" and self.client_certificate is not None:
            variables["certificate_pem"] = str(self.client_certificate[0])
            variables["certificate_key_pem"] = str(self.client_certificate[1])
        variables["lab"] = True
        return {"vars": variables, "groups": groups}

    def write_inventory(self, path: Path) -> None:
        header = (
            f"# procaudit lab inventory, written {datetime.now(UTC):%Y-%m-%d %H:%M:%SZ} by 'procaudit lab up'.\n"
            "# Every host here is a lab model served on loopback, not a Windows machine.\n"
            "# Credentials are not stored here: export PROCAUDIT_USER and PROCAUDIT_PASSWORD as 'lab up' printed.\n"
        )
        body = yaml.safe_dump(self.inventory_document(), sort_keys=False, default_flow_style=False)
        atomic_write(path, header + body, mode=0o644)


class SubnetClaim:
    """This process's exclusive use of 127.N.0.0/16 for a lab, held until released or the process ends.

    Labs in other processes (parallel test workers, 'lab up' next to the demo) skip claimed blocks, so two labs
    never race for the same addresses. The claim is a Unix socket bound in Linux's abstract namespace: no file
    to clean up, and the kernel drops it with the process. Elsewhere only the address probe protects.
    """

    def __init__(self, subnet: int, holder: socket.socket | None) -> None:
        self.subnet = subnet
        self._holder = holder

    def release(self) -> None:
        if self._holder is not None:
            self._holder.close()
            self._holder = None


def claim_subnet(subnet: int, port: int) -> SubnetClaim | None:
    """Claim 127.<subnet>.0.0/16 if no lab holds it and its first address is free on ``port``."""
    holder: socket.socket | None = None
    if sys.platform.startswith("linux"):
        holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            holder.bind(f"\0procaudit-lab-127.{subnet}")
        except OSError:
            holder.close()
            return None
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((address_for(subnet, 0), port))
    except OSError:
        if holder is not None:
            holder.close()
        return None
    finally:
        probe.close()
    return SubnetClaim(subnet, holder)


def free_subnet(port: int) -> SubnetClaim:
    """Claim a free 127.N.0.0/16 block (N in 30..249) for a lab."""
    candidates = list(range(30, 250))
    random.shuffle(candidates)
    for subnet in candidates:
        claim = claim_subnet(subnet, port)
        if claim is not None:
            return claim
    raise UserInputError("no free 127.N.0.0/16 block for a lab; stop other labs")
