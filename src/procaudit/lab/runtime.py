"""Start a lab: build hosts from profiles, give each its loopback address, serve WinRM, write an inventory."""

from __future__ import annotations

import errno
import random
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from procaudit.errors import UserInputError
from procaudit.fsutil import atomic_write
from procaudit.lab.endpoint import CredentialStore, HostEndpoint, LabServer
from procaudit.lab.faults import FaultRule, faults_for
from procaudit.lab.model import LabHost, LabWorld
from procaudit.lab.profiles import DEMO_MIX, build_host
from procaudit.lab.scripts import make_executor
from procaudit.transport.base import Credentials

WINRM_HTTP_PORT = 5985
LAB_USER = "LAB\\operator"

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
        port: int = WINRM_HTTP_PORT,
    ) -> None:
        self.credentials = credentials
        self.port = port
        self.subnet = subnet if subnet is not None else _free_subnet(port)
        self.hosts: dict[str, LabHostRuntime] = {}
        self.world = LabWorld()
        rules = faults or []
        for index, (name, profile) in enumerate(zip(host_names(plan), plan, strict=True)):
            host = build_host(profile, name)
            self.world.hosts[name] = host
            host_faults = faults_for(name, rules)
            endpoint = HostEndpoint(
                name=name,
                address=address_for(self.subnet, index),
                port=port,
                executor=make_executor(host, host_faults, self.world),
                faults=host_faults,
                private_data={"PSVersionTable": {"PSVersion": host.os.ps_version}},
            )
            self.hosts[name] = LabHostRuntime(host, endpoint)
        unmatched = [r.pattern for r in rules if not any(faults_for(n, [r]) for n in self.hosts)]
        if unmatched:
            raise UserInputError(f"--fault host pattern(s) match no lab host: {', '.join(unmatched)}")
        self.server = LabServer([rt.endpoint for rt in self.hosts.values()])

    def start(self) -> None:
        CredentialStore.add(self.credentials.username, self.credentials.password)
        try:
            self.server.start()
        except OSError as exc:
            self.server.stop()
            if exc.errno == errno.EADDRINUSE:
                raise UserInputError(
                    f"lab addresses 127.{self.subnet}.x.x:{self.port} are in use; is another lab running? "
                    "choose another --subnet"
                ) from None
            raise

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def host(self, name: str) -> LabHost:
        return self.hosts[name].host

    def inventory_document(self) -> dict[str, object]:
        groups: dict[str, dict[str, object]] = {}
        for name, runtime in self.hosts.items():
            group = _ROLE_GROUPS[runtime.host.role]
            hosts = groups.setdefault(group, {"hosts": {}})["hosts"]
            assert isinstance(hosts, dict)
            hosts[name] = {"address": runtime.endpoint.address, "lab_profile": runtime.host.profile}
        return {
            "vars": {"transport": "http", "port": self.port, "auth": "ntlm", "lab": True},
            "groups": groups,
        }

    def write_inventory(self, path: Path) -> None:
        header = (
            f"# procaudit lab inventory, written {datetime.now(UTC):%Y-%m-%d %H:%M:%SZ} by 'procaudit lab up'.\n"
            "# Every host here is a lab model served on loopback, not a Windows machine.\n"
            "# Credentials are not stored here: export PROCAUDIT_USER and PROCAUDIT_PASSWORD as 'lab up' printed.\n"
        )
        body = yaml.safe_dump(self.inventory_document(), sort_keys=False, default_flow_style=False)
        atomic_write(path, header + body, mode=0o644)


def _free_subnet(port: int) -> int:
    """A 127.N.0.0/16 block whose first address is free on ``port`` (tests run labs side by side)."""
    candidates = list(range(30, 250))
    random.shuffle(candidates)
    for subnet in candidates[:40]:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind((address_for(subnet, 0), port))
        except OSError:
            continue
        finally:
            probe.close()
        return subnet
    raise UserInputError("no free 127.N.0.0/16 block for a lab; stop other labs")
