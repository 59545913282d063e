"""Push the detection management pack to a SCOM management server, and find the canary alert there.

``push`` runs on one management server over PowerShell Remoting, with shipped scripts only:

1. ``Export-ScomManagementPack.ps1``: the installed version; unless ``check``, an export of it as a backup on the
   server (``%ProgramData%\\procaudit\\mp-backup\\<time>\\``), whose content also comes back and is kept locally;
2. the new version: the installed one with its last part bumped (or the version given, which must be newer), and
   the MP built from the rules with that version;
3. ``Copy-ProcauditFile.ps1``: the MP copied in Base64 chunks, SHA-256 checked on the host;
4. ``Import-ScomManagementPack.ps1``: ``Import-SCOMManagementPack``, then the installed version read back.

The outcome is ``OK`` only when the installed version read back is the new one; a refusal by the management
group (its message, e.g. a reference the group lacks or a version that is not newer) is ``FAIL``; a host that
could not be reached or whose script failed is ``ERROR``; ``check`` stops after step 2 with ``PENDING``.

``find_canary_alert`` polls ``Get-ScomCanaryAlert.ps1`` for the alert that the canary rule
(``ProcauditVerifyCanary``) raises when ``procaudit verify`` starts ``cmd.exe /d /c rem procaudit-verify-<nonce>``
on a host whose SCOM agent reports to the management group: this is the SCOM half of ``procaudit verify --scom``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from procaudit.detections import mpbuild
from procaudit.detections.rules import RULE_ID, CompiledRule
from procaudit.errors import ContractError, TransportError, UserInputError
from procaudit.filecopy import copy_file
from procaudit.fsutil import atomic_write
from procaudit.remote import ScriptParams, ScriptResult, ScriptSpec
from procaudit.transport.base import Connector, HostTarget

#: The canary rule's id in detections/ (its SCOM rule id is ``<mp id>.Rule.<this>``).
CANARY_RULE_ID = "ProcauditVerifyCanary"
_NONCE = re.compile(r"[0-9a-f]{32}")
_VERSION = re.compile(r"[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}")
_MAX_PART = 2**31 - 1  # .NET System.Version parts are Int32


# --- scripts -----------------------------------------------------------------------------------------------------


class ExportParams(ScriptParams):
    name: str
    what_if: bool | None = None  # -WhatIf (to_pascal gives the name)


class ExportResult(ScriptResult):
    name: str
    installed: bool
    version: str | None = None
    sealed: bool | None = None
    display_name: str | None = None
    management_group: str | None = None
    backup_path: str | None = None
    content_base64: str | None = None
    sha256: str | None = None


class ImportParams(ScriptParams):
    file_name: str
    sha256: str
    name: str
    version: str
    what_if: bool | None = None  # -WhatIf (to_pascal gives the name)


class ImportResult(ScriptResult):
    name: str
    path: str
    previous_version: str | None = None
    installed_version: str | None = None
    imported: bool
    refusal: str | None = None


class AlertParams(ScriptParams):
    rule_name: str
    nonce: str
    since: str | None = None  # ISO 8601 UTC ("...Z"): only alerts raised at or after it


class ScomAlert(ScriptResult):
    id: str
    name: str | None = None
    computer_name: str | None = None
    time_raised: str | None = None
    resolution_state: int | None = None
    repeat_count: int | None = None
    severity: str | None = None


class AlertResult(ScriptResult):
    rule_name: str
    rule_found: bool
    rule_enabled: bool
    alerts: list[ScomAlert] = Field(default_factory=list)


EXPORT_MP = ScriptSpec("Export-ScomManagementPack", "deploy", ExportParams, ExportResult, mutating=True)
IMPORT_MP = ScriptSpec("Import-ScomManagementPack", "deploy", ImportParams, ImportResult, mutating=True)
GET_CANARY_ALERT = ScriptSpec("Get-ScomCanaryAlert", "checks", AlertParams, AlertResult)


# --- versions ----------------------------------------------------------------------------------------------------


def parse_version(text: str) -> tuple[int, int, int, int]:
    """``a.b.c.d`` as four numbers.

    Raises:
        UserInputError: not four numbers.
    """
    if not _VERSION.fullmatch(text.strip()):
        raise UserInputError(f"management pack version {text!r}: use four numbers, e.g. 1.0.0.3")
    major, minor, build, revision = (int(part) for part in text.strip().split("."))
    return major, minor, build, revision


def bump_version(text: str) -> str:
    """The next version: the last part plus one (carrying into the one before when it would overflow)."""
    parts = list(parse_version(text))
    for index in (3, 2, 1, 0):
        if parts[index] < _MAX_PART:
            parts[index] += 1
            break
        parts[index] = 0
    else:
        raise UserInputError(f"management pack version {text!r} cannot be bumped")
    return ".".join(str(part) for part in parts)


# --- push --------------------------------------------------------------------------------------------------------

PushStatus = Literal["OK", "FAIL", "ERROR", "PENDING"]


class PushHost(BaseModel):
    """What pushing the MP did on one management server."""

    host: str
    address: str
    status: PushStatus
    lab: bool = False
    mp_id: str
    management_group: str | None = None
    previous_version: str | None = None
    new_version: str | None = None
    installed_version: str | None = None
    rules: int = 0
    server_backup: str | None = None
    local_backup: str | None = None
    staged_path: str | None = None
    sha256: str | None = None
    message: str = ""
    error_kind: str | None = None


class PushReport(BaseModel):
    hosts: list[PushHost]


def _keep_backup(export: ExportResult, backup_dir: Path, host: str) -> str:
    """Write the exported MP beside the operator after checking it arrived whole; returns its path."""
    try:
        content = base64.b64decode(export.content_base64 or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContractError(f"Export-ScomManagementPack returned a backup that is not Base64 ({exc})") from exc
    digest = hashlib.sha256(content).hexdigest()
    if export.sha256 is None or digest != export.sha256.lower():
        raise ContractError(f"the exported backup of {export.name} arrived damaged (SHA-256 {digest})")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = backup_dir / f"{export.name}-{export.version}-{_safe(host)}-{stamp}.xml"
    atomic_write(path, content, mode=0o644)
    return str(path)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def push(
    connector: Connector,
    rules: Sequence[CompiledRule],
    *,
    mp_id: str = mpbuild.DEFAULT_MP_ID,
    version: str | None = None,
    check: bool = False,
    backup_dir: Path | None = None,
) -> PushHost:
    """Push the MP built from ``rules`` to the management server behind ``connector``.

    Host failures are reported in the result (``ERROR``), not raised.

    Raises:
        UserInputError: a bad MP id or version, or a version that is not newer than the installed one.
    """
    target: HostTarget = connector.target
    if not RULE_ID.fullmatch(mp_id) or len(mp_id) > 200:
        raise UserInputError(f"management pack id {mp_id!r}: use letters, digits, '_' and '.' only (no hyphens)")
    if version is not None:
        parse_version(version)
    host = PushHost(host=target.name, address=target.address, lab=target.is_lab, status="ERROR", mp_id=mp_id)
    try:
        export = connector.run(EXPORT_MP, ExportParams(name=mp_id, what_if=True if check else None))
        host.management_group = export.management_group
        host.previous_version = export.version if export.installed else None
        if export.installed and export.sealed:
            host.status = "FAIL"
            host.message = (
                f"{mp_id} {export.version} is installed sealed; an unsealed pack with the same id cannot replace it "
                "(remove it first, or push under another --name)"
            )
            return host
        if version is None:
            new_version = bump_version(export.version) if export.installed and export.version else "1.0.0.0"
        else:
            new_version = version
            if export.installed and export.version and parse_version(version) <= parse_version(export.version):
                raise UserInputError(
                    f"--version {version} is not newer than {export.version}, installed on {target.name}; "
                    "SCOM refuses it (leave --version out to bump the installed version)"
                )
        host.new_version = new_version
        built = mpbuild.build(rules, mp_id=mp_id, version=new_version)
        host.rules = len(built.rules)
        data = built.xml.encode("utf-8")
        host.sha256 = hashlib.sha256(data).hexdigest()
        if export.installed and export.content_base64 and backup_dir is not None:
            host.local_backup = _keep_backup(export, backup_dir, target.name)
        host.server_backup = export.backup_path
        if check:
            host.status = "PENDING"
            host.message = (
                f"would import {mp_id} {new_version} over {host.previous_version}"
                if host.previous_version
                else f"would import {mp_id} {new_version} (not installed yet)"
            )
            return host
        copied = copy_file(connector, f"{mp_id}.xml", data)
        host.staged_path = copied.path
        imported = connector.run(
            IMPORT_MP, ImportParams(file_name=f"{mp_id}.xml", sha256=host.sha256, name=mp_id, version=new_version)
        )
        host.installed_version = imported.installed_version
        if imported.refusal:
            host.status = "FAIL"
            host.message = f"the management group refused {mp_id} {new_version}: {imported.refusal}"
        elif imported.installed_version != new_version:
            host.status = "FAIL"
            host.message = (
                f"imported, but the installed version read back is {imported.installed_version}, not {new_version}"
            )
        else:
            host.status = "OK"
            host.message = f"{mp_id} {new_version} installed" + (
                f" (was {host.previous_version})" if host.previous_version else ""
            )
    except TransportError as exc:
        host.status = "ERROR"
        host.error_kind = exc.kind
        host.message = str(exc)
    return host


# --- the canary alert --------------------------------------------------------------------------------------------

AlertStatus = Literal["PASS", "FAIL", "ERROR"]


class AlertHost(BaseModel):
    """Whether the canary alert of one verification run reached SCOM."""

    host: str
    address: str
    status: AlertStatus
    lab: bool = False
    nonce: str
    rule: str
    rule_found: bool | None = None
    alerts: list[ScomAlert] = Field(default_factory=list)
    polls: int = 0
    waited_s: float = 0.0
    message: str = ""
    error_kind: str | None = None


class AlertReport(BaseModel):
    hosts: list[AlertHost]


def canary_rule_name(mp_id: str = mpbuild.DEFAULT_MP_ID) -> str:
    """The canary rule's id inside the management pack."""
    return f"{mp_id}.Rule.{CANARY_RULE_ID}"


def check_nonce(nonce: str) -> str:
    """A verification nonce: 32 lower-case hexadecimal characters.

    Raises:
        UserInputError: anything else.
    """
    if not _NONCE.fullmatch(nonce):
        raise UserInputError(f"nonce {nonce!r}: expected 32 lower-case hexadecimal characters")
    return nonce


def find_canary_alert(
    connector: Connector,
    nonce: str,
    *,
    mp_id: str = mpbuild.DEFAULT_MP_ID,
    since: datetime | None = None,
    timeout: float = 300.0,
    interval: float = 15.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertHost:
    """Poll the management server until the canary alert for ``nonce`` is there or ``timeout`` seconds pass.

    SCOM raises the alert when the agent forwards the event (usually within a minute or two of the process
    start), so the default waits up to five minutes. With ``since`` (an aware time: the marker's start, less any
    clock-skew allowance), only alerts raised at or after it count. Host failures are reported in the result, not
    raised.

    Raises:
        UserInputError: a malformed nonce.
    """
    check_nonce(nonce)
    not_before = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if since is not None else None
    target = connector.target
    rule = canary_rule_name(mp_id)
    result = AlertHost(
        host=target.name, address=target.address, lab=target.is_lab, status="FAIL", nonce=nonce, rule=rule
    )
    started = clock()
    try:
        while True:
            found = connector.run(GET_CANARY_ALERT, AlertParams(rule_name=rule, nonce=nonce, since=not_before))
            result.polls += 1
            result.rule_found = found.rule_found
            result.alerts = found.alerts
            result.waited_s = round(clock() - started, 1)
            if found.alerts:
                result.status = "PASS"
                result.message = f"{len(found.alerts)} canary alert(s) for this run, from " + ", ".join(
                    sorted({alert.computer_name or "?" for alert in found.alerts})
                )
                return result
            if not found.rule_found:
                result.message = f"the canary rule {rule} is not installed: push the management pack first"
                return result
            if not found.rule_enabled:
                result.message = f"the canary rule {rule} is disabled in the management pack"
                return result
            if clock() - started + interval > timeout:
                result.message = (
                    f"no canary alert for this run after {result.waited_s:g} s: is the host's SCOM agent running and "
                    "reporting to this management group, and is 4688 with command line logged there?"
                )
                return result
            sleep(interval)
    except TransportError as exc:
        result.status = "ERROR"
        result.error_kind = exc.kind
        result.message = str(exc)
        return result
