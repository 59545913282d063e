"""Copy a file to a host over PowerShell Remoting alone (no SMB), with the shipped ``Copy-ProcauditFile.ps1``.

The content travels as pipeline input: Base64 chunks, each decoding on its own, small enough that no chunk comes
near WinRM's MaxEnvelopeSizekb (500 KB by default; pypsrp also fragments messages to the envelope size it
negotiated). The expected length and SHA-256 are bound as parameters and checked on the host before anything is
written; the host's answer is checked again here.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator

from procaudit.errors import ContractError, UserInputError
from procaudit.remote import ScriptParams, ScriptResult, ScriptSpec
from procaudit.transport.base import Connector

#: Raw bytes per chunk: a multiple of 3, so each chunk is Base64 on its own (64 KiB of text per chunk).
CHUNK_BYTES = 48 * 1024
#: What the script accepts (-Length's range); a management pack is ~100 KB.
MAX_BYTES = 64 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


class CopyParams(ScriptParams):
    name: str
    sha256: str
    length: int
    chunk: str | None = None  # pipeline input, never bound as a parameter
    what_if: bool | None = None  # -WhatIf (to_pascal gives the name)


class CopyResult(ScriptResult):
    path: str
    length: int
    sha256: str
    written: bool


COPY_FILE = ScriptSpec("Copy-ProcauditFile", "deploy", CopyParams, CopyResult, mutating=True)


def chunks(data: bytes, size: int = CHUNK_BYTES) -> Iterator[str]:
    """The content as Base64 chunks that decode one by one (one empty chunk for empty content)."""
    if not data:
        yield ""
        return
    for start in range(0, len(data), size):
        yield base64.b64encode(data[start : start + size]).decode("ascii")


def copy_file(
    connector: Connector, name: str, data: bytes, *, what_if: bool = False, timeout: float | None = None
) -> CopyResult:
    """Copy ``data`` to ``%ProgramData%\\procaudit\\staging\\<name>`` on the connector's host.

    Raises:
        UserInputError: a name with a path or odd characters, or content too large.
        TransportError: the host could not be reached, or the script failed (e.g. the content arrived damaged).
        ContractError: the host reports another length or hash than was sent.
    """
    if not _NAME.match(name):
        raise UserInputError(f"file name {name!r}: use letters, digits, '.', '_' and '-' only (no path)")
    if len(data) > MAX_BYTES:
        raise UserInputError(f"{name}: {len(data)} bytes is more than the {MAX_BYTES} bytes a copy may carry")
    digest = hashlib.sha256(data).hexdigest()
    params = CopyParams(name=name, sha256=digest, length=len(data), what_if=True if what_if else None)
    result = connector.run(COPY_FILE, params, input=chunks(data), timeout=timeout)
    if result.length != len(data) or result.sha256.lower() != digest:
        raise ContractError(
            f"Copy-ProcauditFile reports {result.length} bytes with SHA-256 {result.sha256} for {name}, "
            f"but {len(data)} bytes with SHA-256 {digest} were sent"
        )
    return result
