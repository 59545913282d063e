"""Live tests: the same flows against a real Windows host. Opt-in; never part of CI.

Set PROCAUDIT_LIVE_HOST (name or address), PROCAUDIT_USER, PROCAUDIT_PASSWORD, and optionally
PROCAUDIT_LIVE_TRANSPORT (https|http, default https), PROCAUDIT_LIVE_AUTH (default negotiate),
PROCAUDIT_LIVE_CA_BUNDLE.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from procaudit.credentials import resolve_credentials
from procaudit.transport.base import ConnectionOptions, HostTarget
from procaudit.transport.psrp import PsrpConnector


@pytest.fixture(scope="session")
def live_target() -> HostTarget:
    host = os.environ.get("PROCAUDIT_LIVE_HOST")
    if not host:
        pytest.skip("live tests need PROCAUDIT_LIVE_HOST, PROCAUDIT_USER and PROCAUDIT_PASSWORD")
    ca = os.environ.get("PROCAUDIT_LIVE_CA_BUNDLE")
    options = ConnectionOptions(
        scheme=os.environ.get("PROCAUDIT_LIVE_TRANSPORT", "https"),  # type: ignore[arg-type]
        auth=os.environ.get("PROCAUDIT_LIVE_AUTH", "negotiate"),  # type: ignore[arg-type]
        ca_bundle=Path(ca) if ca else None,
    )
    return HostTarget(name=host, address=host, options=options)


@pytest.fixture
def live(live_target: HostTarget) -> Iterator[PsrpConnector]:
    with PsrpConnector(live_target, resolve_credentials(None)) as connector:
        yield connector
