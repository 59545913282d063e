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
