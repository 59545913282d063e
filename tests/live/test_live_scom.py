"""What the lab models of a SCOM management server, checked on a real one. Opt-in; never part of CI.

Set PROCAUDIT_LIVE_SCOM (a management server's name or address) besides the variables tests/live/conftest.py names.
Only reads and -WhatIf calls run: nothing is exported, staged or imported on the server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
from collections.abc import Iterator

import pytest

from procaudit.credentials import resolve_credentials
from procaudit.detections import scom
from procaudit.errors import RemoteScriptError
from procaudit.filecopy import copy_file
from procaudit.transport.base import HostTarget
from procaudit.transport.psrp import PsrpConnector

pytestmark = pytest.mark.live


@pytest.fixture
def management_server(live_target: HostTarget) -> Iterator[PsrpConnector]:
    address = os.environ.get("PROCAUDIT_LIVE_SCOM")
    if not address:
        pytest.skip("SCOM live tests need PROCAUDIT_LIVE_SCOM (a management server)")
    target = dataclasses.replace(live_target, name=address, address=address)
    with PsrpConnector(target, resolve_credentials(None)) as connector:
        yield connector


def test_export_what_if_reads_a_sealed_library_without_writing(management_server: PsrpConnector) -> None:
    result = management_server.run(scom.EXPORT_MP, scom.ExportParams(name="System.Library", what_if=True))
    assert result.installed and result.sealed is True and result.management_group
    assert scom.parse_version(result.version or "") >= (7, 5, 8501, 0)
    assert result.backup_path is None and result.content_base64 is None


def test_export_of_an_unknown_pack_says_not_installed(management_server: PsrpConnector) -> None:
    name = f"Procaudit.Live.Absent{secrets.token_hex(4)}"
    result = management_server.run(scom.EXPORT_MP, scom.ExportParams(name=name, what_if=True))
    assert result.installed is False and result.version is None


def test_copy_what_if_checks_the_hash_and_writes_nothing(management_server: PsrpConnector) -> None:
    data = secrets.token_bytes(200_000)
    result = copy_file(management_server, "procaudit-live-test.bin", data, what_if=True)
    assert result.written is False and result.sha256 == hashlib.sha256(data).hexdigest()


def test_canary_query_for_a_fresh_nonce_finds_nothing(management_server: PsrpConnector) -> None:
    result = management_server.run(
        scom.GET_CANARY_ALERT, scom.AlertParams(rule_name=scom.canary_rule_name(), nonce=secrets.token_hex(16))
    )
    assert result.alerts == []


def test_canary_query_refuses_an_upper_case_nonce(management_server: PsrpConnector) -> None:
    # ValidatePattern ignores case; the script's own -cnotmatch check is what the lab models.
    with pytest.raises(RemoteScriptError, match="lower-case hexadecimal"):
        management_server.run(
            scom.GET_CANARY_ALERT,
            scom.AlertParams(rule_name=scom.canary_rule_name(), nonce=secrets.token_hex(16).upper()),
        )


def test_canary_query_since_the_future_finds_nothing(management_server: PsrpConnector) -> None:
    result = management_server.run(
        scom.GET_CANARY_ALERT,
        scom.AlertParams(rule_name=scom.canary_rule_name(), nonce=secrets.token_hex(16), since="2100-01-01T00:00:00Z"),
    )
    assert result.alerts == []


def test_import_of_a_file_that_was_never_staged_fails_and_changes_nothing(management_server: PsrpConnector) -> None:
    # The lab models this refusal ("Could not find file ..."): the script must fail before any import.
    name = "System.Library"
    before = management_server.run(scom.EXPORT_MP, scom.ExportParams(name=name, what_if=True))
    with pytest.raises(RemoteScriptError, match="Could not find file"):
        management_server.run(
            scom.IMPORT_MP,
            scom.ImportParams(
                file_name=f"procaudit-never-staged-{secrets.token_hex(4)}.xml",
                sha256="0" * 64,
                name=name,
                version="1.0.0.0",
                what_if=True,
            ),
        )
    after = management_server.run(scom.EXPORT_MP, scom.ExportParams(name=name, what_if=True))
    assert after.version == before.version
