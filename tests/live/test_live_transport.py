"""What the lab models about the transport, checked on a real host."""

from __future__ import annotations

import dataclasses

import pytest

from procaudit.errors import AuthError, DeadlineError
from procaudit.ping import GET_HOST_IDENTITY, NoParams
from procaudit.transport.base import Credentials, HostTarget
from procaudit.transport.psrp import PsrpConnector

pytestmark = pytest.mark.live


def test_identity_script_runs_on_windows_powershell_51(live: PsrpConnector) -> None:
    identity = live.run(GET_HOST_IDENTITY, NoParams())
    assert identity.ps_version.startswith(("5.1", "7."))
    assert identity.os_version.count(".") == 2 and identity.os_build == identity.os_version.rsplit(".", 1)[1]
    assert identity.product_type in (1, 2, 3)


def test_wrong_password_is_classified_as_auth(live_target: HostTarget) -> None:
    with pytest.raises(AuthError), PsrpConnector(live_target, Credentials("procaudit-nobody", "wrong")) as conn:
        conn.open()


def test_a_short_deadline_stops_the_pipeline(live_target: HostTarget) -> None:
    # A real host answers the identity script in well under a second; a 1 ms deadline must stop it cleanly
    # and leave the session usable, as the lab's 'hang' fault models.
    from procaudit.credentials import resolve_credentials

    target = dataclasses.replace(live_target)
    with PsrpConnector(target, resolve_credentials(None)) as conn:
        with pytest.raises(DeadlineError):
            conn.run(GET_HOST_IDENTITY, NoParams(), timeout=0.001)
        assert conn.run(GET_HOST_IDENTITY, NoParams()).product_type in (1, 2, 3)


def _https(target: HostTarget) -> None:
    if target.options.scheme != "https":
        pytest.skip("needs PROCAUDIT_LIVE_TRANSPORT=https")


def test_private_ca_without_its_bundle_is_an_untrusted_certificate(live_target: HostTarget) -> None:
    """The lab's 'tls-untrusted' case on a real listener whose certificate comes from a private CA."""
    _https(live_target)
    if live_target.options.ca_bundle is None:
        pytest.skip("needs PROCAUDIT_LIVE_CA_BUNDLE (a listener certificate from a private CA)")
    from procaudit.credentials import resolve_credentials
    from procaudit.errors import TlsError

    bare = dataclasses.replace(live_target, options=dataclasses.replace(live_target.options, ca_bundle=None))
    with pytest.raises(TlsError, match="is not trusted"), PsrpConnector(bare, resolve_credentials(None)) as conn:
        conn.open()


def test_plain_http_to_the_https_listener(live_target: HostTarget) -> None:
    """HTTP.sys resets plain HTTP on 5986 as the lab does; we must say 'HTTPS listener', not 'dropped'."""
    _https(live_target)
    from procaudit.credentials import resolve_credentials
    from procaudit.errors import TlsError

    options = dataclasses.replace(live_target.options, scheme="http", port=live_target.options.effective_port)
    target = dataclasses.replace(live_target, options=options)
    with pytest.raises(TlsError, match="HTTPS listener"), PsrpConnector(target, resolve_credentials(None)) as conn:
        conn.open()


def test_kerberos_to_a_name_without_spn(live_target: HostTarget) -> None:
    """The lab's 'no-spn' fault: a real KDC answers 'Server not found in Kerberos database' for an unknown SPN."""
    if live_target.options.auth != "kerberos":
        pytest.skip("needs PROCAUDIT_LIVE_AUTH=kerberos")
    from procaudit.credentials import resolve_credentials

    options = dataclasses.replace(live_target.options, kerberos_hostname="procaudit-no-such-host.invalid")
    target = dataclasses.replace(live_target, options=options)
    with (
        pytest.raises(AuthError, match="no service principal"),
        PsrpConnector(target, resolve_credentials(None, needs_password=False)) as conn,
    ):
        conn.open()
