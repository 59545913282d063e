"""Lab fixtures: real WinRM/PSRP endpoints on loopback, driven by the real pypsrp client."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procaudit.inventory import Overrides, load_inventory, to_targets
from procaudit.lab.faults import parse_fault_rule
from procaudit.lab.kdc import offline_krb5_config
from procaudit.lab.runtime import Lab, lab_credentials
from procaudit.transport.base import Credentials, HostTarget
from procaudit.transport.psrp import PsrpConnector

# No test may send a Kerberos request or a DNS query off this machine: until a test starts the lab realm
# (LabKdc.shared() then points KRB5_CONFIG at it), Kerberos sees only an offline realm on a closed loopback port.
OFFLINE_KRB5_CONFIG = offline_krb5_config(Path(tempfile.mkdtemp(prefix="procaudit-test-krb5-")) / "krb5.conf")
os.environ["KRB5_CONFIG"] = str(OFFLINE_KRB5_CONFIG)
os.environ.pop("KRB5CCNAME", None)


class LabHandle:
    def __init__(self, lab: Lab, inventory: Path) -> None:
        self.lab = lab
        self.inventory = inventory
        self.credentials: Credentials = lab.credentials

    def target(self, name: str, **overrides: object) -> HostTarget:
        inv = load_inventory(self.inventory)
        return to_targets(inv, inv.select(name), Overrides(**overrides))[0]  # type: ignore[arg-type]

    def connector(self, name: str, credentials: Credentials | None = None, **overrides: object) -> PsrpConnector:
        return PsrpConnector(self.target(name, **overrides), credentials or self.credentials)

    def endpoint(self, name: str):  # type: ignore[no-untyped-def]
        return self.lab.hosts[name].endpoint


def start_lab(tmp_path: Path, plan: list[str], faults: list[str] | None = None, **options: Any) -> Iterator[LabHandle]:
    """A lab (HTTPS with its CA by default; ``transport="http"``, ``kerberos=True``, ``auth=...`` as ``Lab`` takes)."""
    lab = Lab(plan, credentials=lab_credentials(), faults=[parse_fault_rule(f) for f in faults or []], **options)
    with lab:
        inventory = tmp_path / "lab.yml"
        lab.write_inventory(inventory)
        yield LabHandle(lab, inventory)


@pytest.fixture(scope="module")
def fault_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    """One host per fault kind, plus healthy hosts (lab-ready-01, lab-ready-02)."""
    yield from start_lab(
        tmp_path_factory.mktemp("fault-lab"),
        ["ready", "ready", "dc", "rds", "workstation", "cmdline-off", "fresh-2019", "small-log"],
        [
            "lab-dc-01=down",
            "lab-rds-01=refuse",
            "lab-workstation-01=auth-fail",
            "lab-cmdline-off-01=hang",
            "lab-fresh-2019-01=drop",
            "lab-small-log-01=slow:300",
        ],
    )
