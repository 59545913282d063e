"""Kerberos for real: an MIT KDC on loopback, HTTP/<host> service principals, pyspnego's GSSAPI acceptor.

Host names: lab names never resolve. Clients dial the loopback address and name the service principal with
pypsrp's hostname override (the inventory's ``kerberos_hostname``), and the lab krb5.conf disables DNS
canonicalisation, so no test depends on /etc/hosts or a resolver and labs can run side by side.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pypsrp.encryption import WinRMEncryption

from procaudit.errors import AuthError
from procaudit.lab.kdc import REALM, LabKdc, gssapi_available, host_fqdn, missing_tools
from procaudit.ping import GET_HOST_IDENTITY, NoParams
from procaudit.transport.base import Credentials
from procaudit.transport.psrp import PsrpConnector

from .conftest import LabHandle, start_lab
from .test_cli import run_cli

_MISSING = missing_tools()
pytestmark = [
    pytest.mark.kerberos,
    pytest.mark.skipif(
        bool(_MISSING),
        reason=f"MIT KDC not installed ({', '.join(_MISSING)}): apt-get install krb5-kdc krb5-admin-server",
    ),
    pytest.mark.skipif(
        not gssapi_available(), reason="python gssapi/krb5 missing: pip install 'procaudit[kerberos]' (libkrb5-dev)"
    ),
]


@pytest.fixture(scope="module")
def kdc() -> LabKdc:
    return LabKdc.shared()


@pytest.fixture(scope="module")
def krb_lab(tmp_path_factory: pytest.TempPathFactory, kdc: LabKdc) -> Iterator[LabHandle]:
    """Kerberos over HTTP with message encryption; lab-dc-01 has no SPN in the realm."""
    yield from start_lab(
        tmp_path_factory.mktemp("krb-lab"),
        ["ready", "ready", "dc"],
        ["lab-dc-01=no-spn"],
        transport="http",
        kerberos=True,
    )


@pytest.fixture(scope="module")
def krb_https_lab(tmp_path_factory: pytest.TempPathFactory, kdc: LabKdc) -> Iterator[LabHandle]:
    yield from start_lab(tmp_path_factory.mktemp("krb-https"), ["ready"], kerberos=True)


def principal_credentials(handle: LabHandle, **change: str) -> Credentials:
    assert handle.lab.principal is not None
    return Credentials(
        change.get("username", handle.lab.principal), change.get("password", handle.credentials.password)
    )


def test_inventory_names_the_principal_and_each_hosts_spn_name(krb_lab: LabHandle) -> None:
    document = yaml.safe_load(krb_lab.inventory.read_text())
    assert document["vars"]["auth"] == "kerberos" and document["vars"]["transport"] == "http"
    assert document["vars"]["user"] == krb_lab.lab.principal and krb_lab.lab.principal.endswith(f"@{REALM}")
    hosts = document["groups"]["servers"]["hosts"]
    assert hosts["lab-ready-01"]["kerberos_hostname"] == "lab-ready-01.procaudit.test"
    assert hosts["lab-ready-01"]["address"].startswith("127.")  # dialled by address; the SPN comes from the override


def test_401_offers_negotiate_and_kerberos(krb_lab: LabHandle) -> None:
    endpoint = krb_lab.endpoint("lab-ready-01")
    conn = http.client.HTTPConnection(endpoint.address, endpoint.port, timeout=5)
    conn.request("POST", "/wsman", body=b"", headers={"Content-Type": "application/soap+xml;charset=UTF-8"})
    response = conn.getresponse()
    offered = response.headers.get_all("WWW-Authenticate")
    conn.close()
    assert response.status == 401 and offered is not None
    assert {"Negotiate", "Kerberos"} <= set(offered)


def test_kerberos_over_http_with_message_encryption(krb_lab: LabHandle) -> None:
    endpoint = krb_lab.endpoint("lab-ready-01")
    endpoint.stats.reset()
    with krb_lab.connector("lab-ready-01", principal_credentials(krb_lab)) as conn:
        identity = conn.run(GET_HOST_IDENTITY, NoParams())
    assert identity.computer_name == "LAB-READY-01"
    assert endpoint.stats.logons == {"kerberos": 1}
    assert endpoint.stats.encrypted[WinRMEncryption.SPNEGO] >= 3  # every SOAP body was wrapped


def test_kerberos_scheme_uses_kerberos_session_encryption(krb_lab: LabHandle) -> None:
    """A listener that offers only 'Kerberos' gets the 'Kerberos' header and HTTP-Kerberos-session-encrypted."""
    endpoint = krb_lab.endpoint("lab-ready-02")
    endpoint.stats.reset()
    enabled, endpoint.auth_schemes = endpoint.auth_schemes, ("Kerberos",)
    try:
        with krb_lab.connector("lab-ready-02", principal_credentials(krb_lab)) as conn:
            assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-02"
    finally:
        endpoint.auth_schemes = enabled
    assert endpoint.stats.logons == {"kerberos": 1}
    assert set(endpoint.stats.encrypted) == {WinRMEncryption.KERBEROS}


def test_kerberos_over_https_with_channel_binding(krb_https_lab: LabHandle) -> None:
    endpoint = krb_https_lab.endpoint("lab-ready-01")
    endpoint.stats.reset()
    with krb_https_lab.connector("lab-ready-01", principal_credentials(krb_https_lab)) as conn:
        assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-READY-01"
    assert endpoint.stats.logons == {"kerberos": 1} and not endpoint.stats.encrypted  # TLS protects the bodies


def test_missing_spn_names_the_principal(krb_lab: LabHandle) -> None:
    with (
        pytest.raises(AuthError) as info,
        krb_lab.connector("lab-dc-01", principal_credentials(krb_lab)) as conn,
    ):
        conn.open()
    message = str(info.value)
    assert f"no service principal HTTP/{host_fqdn('lab-dc-01')}@{REALM}" in message and "setspn -S" in message


def test_negotiate_falls_back_to_ntlm_when_the_spn_is_missing(krb_lab: LabHandle) -> None:
    """Why a missing SPN goes unnoticed on Windows: Negotiate quietly uses NTLM instead."""
    endpoint = krb_lab.endpoint("lab-dc-01")
    endpoint.stats.reset()
    with krb_lab.connector("lab-dc-01", principal_credentials(krb_lab), auth="negotiate") as conn:
        assert conn.run(GET_HOST_IDENTITY, NoParams()).computer_name == "LAB-DC-01"
    assert endpoint.stats.logons == {"ntlm": 1}


def test_connecting_by_ip_without_the_hostname_override(krb_lab: LabHandle) -> None:
    target = krb_lab.target("lab-ready-01")
    by_ip = dataclasses.replace(target, options=dataclasses.replace(target.options, kerberos_hostname=None))
    with pytest.raises(AuthError) as info, PsrpConnector(by_ip, principal_credentials(krb_lab)) as conn:
        conn.open()
    assert f"HTTP/{target.address}@{REALM}" in str(info.value) and "kerberos_hostname" in str(info.value)


def test_wrong_realm(krb_lab: LabHandle) -> None:
    user = krb_lab.lab.principal.replace(REALM, "WRONG.TEST")  # type: ignore[union-attr]
    with (
        pytest.raises(AuthError, match=r"no KDC is known for realm WRONG\.TEST") as info,
        krb_lab.connector("lab-ready-01", principal_credentials(krb_lab, username=user)) as conn,
    ):
        conn.open()
    assert "wrong realm?" in str(info.value)


def test_domain_backslash_user_is_not_a_principal(krb_lab: LabHandle) -> None:
    with (
        pytest.raises(AuthError, match="the KDC does not know the account") as info,
        krb_lab.connector("lab-ready-01", krb_lab.credentials) as conn,  # LAB\\operator-...
    ):
        conn.open()
    assert "user@REALM" in str(info.value)


def test_wrong_password_is_rejected_by_the_kdc(krb_lab: LabHandle) -> None:
    with (
        pytest.raises(AuthError, match="the KDC rejected the password") as info,
        krb_lab.connector("lab-ready-01", principal_credentials(krb_lab, password="Wrong-Secret-9")) as conn,
    ):
        conn.open()
    assert "Wrong-Secret-9" not in str(info.value)


# -- ticket caches and clocks, through the command line (a process of its own, with its own environment) -------
_FAKETIME = ("faketime", "-f", "+20m")
_ONE_HOST_JSON = ("-l", "lab-ready-01", "-f", "json")


def _env(kdc: LabKdc, ccache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCAUDIT_")}
    return {**env, **kdc.env, "KRB5CCNAME": f"FILE:{ccache}"}


def test_ticket_cache_without_a_password(krb_lab: LabHandle, kdc: LabKdc, tmp_path: Path) -> None:
    ccache = tmp_path / "cc"
    kdc.kinit(krb_lab.lab.principal, krb_lab.credentials.password, ccache)  # type: ignore[arg-type]
    result = subprocess.run(
        [sys.executable, "-m", "procaudit", "ping", "-i", str(krb_lab.inventory), "-l", "lab-ready-*", "-f", "json"],
        capture_output=True,
        text=True,
        env=_env(kdc, ccache),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert {h["status"] for h in json.loads(result.stdout)["hosts"]} == {"OK"}


def test_expired_ticket(krb_lab: LabHandle, kdc: LabKdc, tmp_path: Path) -> None:
    ccache = tmp_path / "cc"
    kdc.kinit(krb_lab.lab.principal, krb_lab.credentials.password, ccache, lifetime="2s")  # type: ignore[arg-type]
    time.sleep(3)
    result = subprocess.run(
        [sys.executable, "-m", "procaudit", "ping", "-i", str(krb_lab.inventory), "-l", "lab-ready-01", "-f", "json"],
        capture_output=True,
        text=True,
        env=_env(kdc, ccache),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    error = json.loads(result.stdout)["hosts"][0]["error"]
    assert error["kind"] == "auth" and "has expired" in error["message"] and "kinit" in error["message"]


@pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime not installed: apt-get install faketime")
def test_clock_skew(krb_lab: LabHandle, kdc: LabKdc, tmp_path: Path) -> None:
    """This machine's clock 20 minutes ahead of the KDC (libfaketime on the client process only).

    MIT clients correct their own offset from the KDC's reply by default (kdc_timesync), and a skewed client then
    sees its fresh ticket as already expired (next test); with kdc_timesync = 0, as with clients that do not
    correct, the KDC refuses the pre-authentication timestamp: 'Clock skew too great'.
    """
    config = tmp_path / "krb5.conf"
    config.write_text(kdc.krb5_conf.read_text().replace("[libdefaults]\n", "[libdefaults]\n    kdc_timesync = 0\n", 1))
    env = {
        **_env(kdc, tmp_path / "cc"),
        "KRB5_CONFIG": str(config),
        "PROCAUDIT_PASSWORD": krb_lab.credentials.password,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    result = subprocess.run(
        [*_FAKETIME, sys.executable, "-m", "procaudit", "ping", "-i", str(krb_lab.inventory), *_ONE_HOST_JSON],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    error = json.loads(result.stdout)["hosts"][0]["error"]
    assert error["kind"] == "auth" and "clock skew" in error["message"] and "sync them" in error["message"]


@pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime not installed: apt-get install faketime")
def test_clock_ahead_of_the_kdc_looks_like_an_expired_ticket(krb_lab: LabHandle, kdc: LabKdc, tmp_path: Path) -> None:
    env = {**_env(kdc, tmp_path / "cc"), "PROCAUDIT_PASSWORD": krb_lab.credentials.password}
    env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    result = subprocess.run(
        [*_FAKETIME, sys.executable, "-m", "procaudit", "ping", "-i", str(krb_lab.inventory), *_ONE_HOST_JSON],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    error = json.loads(result.stdout)["hosts"][0]["error"]
    assert error["kind"] == "auth" and "has expired" in error["message"] and "clock" in error["message"]


def test_lab_up_kerberos_over_http(kdc: LabKdc, tmp_path: Path) -> None:
    inventory = tmp_path / "krb.yml"
    env = {**os.environ, "PROCAUDIT_USER": "LAB\\krbtester", "PROCAUDIT_PASSWORD": "Krb-Lab-Secret-7"}
    args = ["lab", "up", "--kerberos", "--transport", "http", "--profiles", "ready", "--count", "2"]
    args += ["--subnet", "0", "-i", str(inventory)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "procaudit", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        for _ in range(400):
            if inventory.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert inventory.exists(), proc.stderr.read() if proc.stderr and proc.poll() is not None else "no inventory"
        document = yaml.safe_load(inventory.read_text())
        assert document["vars"]["user"] == f"krbtester@{REALM}"
        krb5_config = _printed_krb5_config(proc)
        client = {**env, "KRB5_CONFIG": krb5_config, "KRB5CCNAME": f"FILE:{tmp_path / 'cc'}"}
        result = run_cli("ping", "-i", str(inventory), "-f", "json", env=client)
        assert result.returncode == 0, result.stderr
        assert {h["status"] for h in json.loads(result.stdout)["hosts"]} == {"OK"}
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Krb-Lab-Secret-7" not in err
    assert not Path(krb5_config).exists()  # the lab's realm went away with it


def _printed_krb5_config(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "KRB5_CONFIG=" in line:
            return line.split("KRB5_CONFIG=", 1)[1].split()[0].strip("'\"")
    raise AssertionError("lab up did not print KRB5_CONFIG")


def test_no_ticket_and_no_password(krb_lab: LabHandle, kdc: LabKdc, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "procaudit", "ping", "-i", str(krb_lab.inventory), *_ONE_HOST_JSON],
        capture_output=True,
        text=True,
        env=_env(kdc, tmp_path / "no-such-ccache"),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    error = json.loads(result.stdout)["hosts"][0]["error"]
    assert error["kind"] == "auth" and "no Kerberos ticket and no password" in error["message"], error
