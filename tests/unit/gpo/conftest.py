"""Fixtures of the GPO tests: the shared data folder and Samba's parsers as an independent validator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procaudit.gpo.polfile import PolEntry, RegType

REPO = Path(__file__).resolve().parents[3]
SYSTEM_PYTHON = Path("/usr/bin/python3")
VALIDATOR = Path(__file__).with_name("samba_gp_validate.py")


def _shared_root() -> Path:
    return Path(os.environ.get("PROCAUDIT_SHARED") or REPO.parent / "shared")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (or ``$PROCAUDIT_SHARED``); the test skips when it is absent."""
    root = _shared_root()
    if not (root / "reference" / "gpo_audit.md").is_file():
        pytest.skip(f"shared data not found at {root} (set PROCAUDIT_SHARED to the shared folder)")
    return root


class SambaValidator:
    """Talks to ``samba_gp_validate.py serve`` running under the system Python."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process

    def _call(self, request: dict[str, Any]) -> Any:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"Samba validator exited (code {self._process.poll()})")
        reply = json.loads(line)
        if not reply["ok"]:
            raise SambaRejected(reply["error"])
        return reply["result"]

    def parse_pol(self, data: bytes) -> dict[str, Any]:
        result: dict[str, Any] = self._call({"op": "parse_pol", "hex": data.hex()})
        return result

    def write_pol(self, entries: list[PolEntry]) -> bytes:
        result = self._call({"op": "write_pol", "entries": [samba_entry(entry) for entry in entries]})
        return bytes.fromhex(result["hex"])

    def parse_csv(self, data: bytes) -> dict[str, Any]:
        result: dict[str, Any] = self._call({"op": "parse_csv", "hex": data.hex()})
        return result

    def parse_inf(self, data: bytes) -> dict[str, Any]:
        result: dict[str, Any] = self._call({"op": "parse_inf", "hex": data.hex()})
        return result


class SambaRejected(Exception):
    """Samba raised while parsing or writing."""


_TYPED = (RegType.REG_SZ, RegType.REG_EXPAND_SZ, RegType.REG_DWORD, RegType.REG_DWORD_BIG_ENDIAN, RegType.REG_QWORD)


def samba_entry(entry: PolEntry) -> dict[str, Any]:
    """An entry as the validator exchanges it (typed data for text and integer types, hex otherwise)."""
    data: Any = entry.value if entry.type in _TYPED else {"hex": entry.data.hex()}
    return {"key": entry.key, "value_name": entry.value_name, "type": int(entry.type), "size": entry.size, "data": data}


def _samba_missing_reason() -> str | None:
    if not SYSTEM_PYTHON.is_file():
        return f"{SYSTEM_PYTHON} not found; Samba's parsers need the Debian system Python"
    probe = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import samba.gp_parse.gp_pol, samba.gp_parse.gp_csv, samba.gp_parse.gp_inf"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return (
            "Debian package python3-samba is not installed (apt-get install python3-samba): "
            + (probe.stderr.strip().splitlines() or ["import failed"])[-1]
        )
    return None


@pytest.fixture(scope="session")
def samba() -> Iterator[SambaValidator]:
    """Samba's gp_parse parsers in a long-lived system-Python subprocess; skips when python3-samba is absent."""
    reason = _samba_missing_reason()
    if reason:
        pytest.skip(reason)
    process = subprocess.Popen(
        [str(SYSTEM_PYTHON), str(VALIDATOR), "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
    )
    try:
        yield SambaValidator(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_validator_on_file(kind: str, path: Path) -> dict[str, Any]:
    """The one-shot command-line form of the validator (what a person would run by hand)."""
    if shutil.which(str(SYSTEM_PYTHON)) is None:
        pytest.skip(f"{SYSTEM_PYTHON} not found")
    done = subprocess.run(
        [str(SYSTEM_PYTHON), str(VALIDATOR), kind, str(path)], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result
