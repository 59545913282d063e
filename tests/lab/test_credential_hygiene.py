"""Credential hygiene: every command, run with a canary password, leaves it nowhere.

Each row of ``COMMANDS`` runs one command line as an administrator would (a subprocess, the password in
``PROCAUDIT_PASSWORD``), against a ``procaudit lab up`` process that accepts the same canary password when
the row needs hosts. Afterwards the row's stdout and stderr, the lab's stdout and stderr, and every file left
under the row's directory (the lab's temporary files included: ``TMPDIR`` and ``HOME`` point there) are
searched for the canary in plain, UTF-16, base64 (any alignment) and NT-hash form. Files that hold state
(journals, plans, state, reports written with ``-o``) must be 0600.

Adding a command is one line in ``COMMANDS``.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from spnego._ntlm_raw.crypto import ntowfv1

import procaudit
from procaudit.lab.kdc import gssapi_available, missing_tools

from .conftest import OFFLINE_KRB5_CONFIG

CANARY = f"Canary-{secrets.token_hex(8)}-Pw"
OTHER_PASSWORD = f"Lab-{secrets.token_hex(8)}-Other"

# Names of files that hold state: they must be private whatever command wrote them.
PRIVATE_NAMES = re.compile(r"journal|state|\.plan|plan\.json", re.IGNORECASE)

_EVENT = (
    '{"EventID": 4688, "Channel": "Security", "Hostname": "ws01.corp.example", "TimeCreated": "2026-11-01T10:00:00Z",'
    ' "SubjectUserName": "bob", "NewProcessName": "C:\\\\Windows\\\\System32\\\\certutil.exe",'
    ' "CommandLine": "certutil -urlcache -f http://203.0.113.9/a.exe a.exe",'
    ' "ParentProcessName": "C:\\\\Windows\\\\explorer.exe"}\n'
)


@dataclass(frozen=True)
class Command:
    """One command line to run. ``{inventory}`` and ``{work}`` are filled in; ``lab`` = 'lab up' options."""

    name: str
    argv: tuple[str, ...]
    lab: tuple[str, ...] | None = None
    lab_password: str = CANARY  # the password the lab accepts (a wrong-password row gives it another one)
    private: tuple[str, ...] = ()  # files (relative to the row's directory) that must exist and be 0600
    exit_codes: frozenset[int] = frozenset({0})
    marks: tuple[pytest.MarkDecorator, ...] = field(default=())


_KDC_MISSING = missing_tools() or ([] if gssapi_available() else ["python gssapi"])
_needs_kdc = pytest.mark.skipif(bool(_KDC_MISSING), reason=f"no MIT KDC / gssapi here: {', '.join(_KDC_MISSING)}")

COMMANDS: list[Command] = [
    Command("ping-table-https", ("ping", "-i", "{inventory}"), lab=()),
    Command(
        "ping-json-report",
        ("ping", "-i", "{inventory}", "-f", "json", "-o", "{work}/ping.json"),
        lab=(),
        private=("ping.json",),
    ),
    Command(
        "ping-csv-http", ("ping", "-i", "{inventory}", "-f", "csv", "-o", "{work}/p.csv"), lab=("--transport", "http")
    ),
    Command("ping-negotiate", ("ping", "-i", "{inventory}", "--auth", "negotiate"), lab=()),
    Command("ping-credssp-delegates", ("ping", "-i", "{inventory}"), lab=("--transport", "http", "--auth", "credssp")),
    Command("ping-certificate", ("ping", "-i", "{inventory}"), lab=("--auth", "certificate")),
    Command(
        "ping-kerberos-http",
        ("ping", "-i", "{inventory}"),
        lab=("--kerberos", "--transport", "http"),
        marks=(_needs_kdc,),
    ),
    Command(
        "ping-wrong-password",
        ("ping", "-i", "{inventory}", "-f", "json"),
        lab=(),
        lab_password=OTHER_PASSWORD,
        exit_codes=frozenset({3}),
    ),
    Command(
        "check-json-report",
        ("check", "-i", "{inventory}", "-f", "json", "-o", "{work}/check.json"),
        lab=(),
        private=("check.json",),
        exit_codes=frozenset({1}),
    ),
    Command(
        "check-html",
        ("check", "-i", "{inventory}", "-f", "html", "-o", "{work}/check.html"),
        lab=(),
        private=("check.html",),
        exit_codes=frozenset({1}),
    ),
    Command("verify", ("verify", "-i", "{inventory}", "--timeout", "2"), lab=(), exit_codes=frozenset({1})),
    Command("collector", ("collector", "--output", "{work}/Collect-ProcAudit.ps1")),
    Command(
        "estimate-json",
        ("estimate", "-i", "{inventory}", "--sample", "1s", "-f", "json", "-o", "{work}/est.json"),
        lab=(),
        private=("est.json",),
    ),
    Command("demo", ("demo",)),
    Command(
        "deploy-check",
        ("deploy", "-i", "{inventory}", "--plan", "{work}/deploy-waves.json", "--check"),
        lab=(),
        exit_codes=frozenset({1}),
    ),
    Command(
        "deploy",
        (
            "deploy",
            "-i",
            "{inventory}",
            "--plan",
            "{work}/deploy-waves.json",
            "--yes",
            "--verify-timeout",
            "2",
            "--journal",
            "{work}/deploy.journal.json",
        ),
        lab=(),
        private=("deploy.journal.json",),
    ),
    Command("gpo-render", ("gpo", "render", "-o", "{work}/gpo", "--deterministic")),
    Command("mp-build", ("mp", "build", "-o", "{work}/mp.xml")),
    Command("mp-test", ("mp", "test", "{work}/events.jsonl", "--format", "json", "-o", "{work}/mp-test.json")),
]


def needles(secret: str) -> dict[str, bytes]:
    """The forms a leaked password takes: text, UTF-16 (Windows APIs), base64 at any alignment, its NT hash."""
    forms = {"plain": secret.encode(), "utf-16": secret.encode("utf-16-le")}
    for label, raw in (("base64", secret.encode()), ("base64-utf16", secret.encode("utf-16-le"))):
        for shift in range(3):
            encoded = base64.b64encode(b"\0" * shift + raw)
            start = (shift * 4 + 2) // 3 + 1  # skip the characters that mix in the padding bytes
            forms[f"{label}@{shift}"] = encoded[start:-4]
    digest = ntowfv1(secret)
    forms["nt-hash"] = digest.hex().encode()
    forms["nt-hash-upper"] = digest.hex().upper().encode()
    forms["nt-hash-raw"] = digest
    return forms


def find_canary(data: bytes, where: str) -> list[str]:
    return [f"{where}: {form}" for form, needle in needles(CANARY).items() if needle and needle in data]


def _env(work: Path, password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCAUDIT_", "KRB5"))}
    (work / "tmp").mkdir(exist_ok=True)
    # The commands run in the row's directory: keep the package importable however the tests found it.
    package_root = str(Path(procaudit.__file__).resolve().parents[1])
    return {
        **env,
        "KRB5_CONFIG": str(OFFLINE_KRB5_CONFIG),
        "PYTHONPATH": os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p),
        "HOME": str(work),
        "TMPDIR": str(work / "tmp"),
        "COLUMNS": "200",
        "PROCAUDIT_USER": "LAB\\hygiene",
        "PROCAUDIT_PASSWORD": password,
    }


def _start_lab(
    work: Path, options: tuple[str, ...], password: str
) -> tuple[subprocess.Popen[bytes], Path, dict[str, str]]:
    inventory = work / "lab.yml"
    argv = [sys.executable, "-m", "procaudit", "lab", "up", "--profiles", "ready,dc", "-i", str(inventory)]
    argv += ["--subnet", "0", *options]
    proc = subprocess.Popen(argv, env=_env(work, password), cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not inventory.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _out, err = proc.communicate()
            raise AssertionError(f"lab up did not start: {err.decode(errors='replace')}")
        time.sleep(0.05)
    extra: dict[str, str] = {}
    if "--kerberos" in options:
        krb5 = next(work.glob("tmp/procaudit-kdc-*/krb5.conf"))
        extra = {"KRB5_CONFIG": str(krb5), "KRB5CCNAME": f"FILE:{work / 'tmp' / 'cc'}"}
    return proc, inventory, extra


@pytest.mark.parametrize("command", [pytest.param(c, id=c.name, marks=c.marks) for c in COMMANDS])
def test_no_trace_of_the_password(command: Command, tmp_path: Path) -> None:
    work = tmp_path
    (work / "events.jsonl").write_text(_EVENT, encoding="utf-8")
    (work / "deploy-waves.json").write_text('{"waves": [{"hosts": ["lab-dc-01"]}, {"hosts": ["lab-ready-01"]}]}')
    found: list[str] = []
    lab_proc = None
    inventory = work / "lab.yml"
    extra: dict[str, str] = {}
    if command.lab is not None:
        lab_proc, inventory, extra = _start_lab(work, command.lab, command.lab_password)
    try:
        argv = [a.format(inventory=inventory, work=work) for a in command.argv]
        result = subprocess.run(
            [sys.executable, "-m", "procaudit", *argv],
            env={**_env(work, CANARY), **extra},
            cwd=work,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=240,
        )
    finally:
        if lab_proc is not None:
            lab_proc.send_signal(signal.SIGTERM)
            lab_out, lab_err = lab_proc.communicate(timeout=60)
            found += find_canary(lab_out, "lab up stdout") + find_canary(lab_err, "lab up stderr")
            assert lab_proc.returncode == 0, lab_err.decode(errors="replace")
    assert result.returncode in command.exit_codes, result.stderr.decode(errors="replace")
    found += find_canary(result.stdout, "stdout") + find_canary(result.stderr, "stderr")
    wrong_mode = []
    for path in sorted(p for p in work.rglob("*") if p.is_file()):
        found += find_canary(path.read_bytes(), str(path.relative_to(work)))
        if PRIVATE_NAMES.search(path.name) and path.stat().st_mode & 0o777 != 0o600:
            wrong_mode.append(str(path.relative_to(work)))
    for name in command.private:
        path = work / name
        assert path.is_file(), f"{command.name} did not write {name}"
        if path.stat().st_mode & 0o777 != 0o600:
            wrong_mode.append(name)
    assert not found, f"the canary password leaked: {found}"
    assert not wrong_mode, f"state files not 0600: {wrong_mode}"
    leftovers = sorted(p.name for p in (work / "tmp").iterdir()) if (work / "tmp").is_dir() else []
    assert not [n for n in leftovers if n.startswith(("procaudit-lab-", "procaudit-kdc-"))], leftovers


def test_the_needles_find_what_they_should() -> None:
    """The scanner itself: each form is found when present, and nothing is found in clean text."""
    assert find_canary(b"nothing to see", "x") == []
    assert find_canary(b"pw=" + CANARY.encode() + b";", "x") == ["x: plain"]
    assert find_canary(CANARY.encode("utf-16-le"), "x") == ["x: utf-16"]
    for prefix in (b"", b"u:", b"us:"):  # Basic-style 'user:password' at each base64 alignment
        blob = base64.b64encode(prefix + CANARY.encode())
        assert any(hit.startswith("x: base64@") for hit in find_canary(b"Authorization: Basic " + blob, "x")), prefix
    assert find_canary(ntowfv1(CANARY).hex().upper().encode(), "x") == ["x: nt-hash-upper"]
