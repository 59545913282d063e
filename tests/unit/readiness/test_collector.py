"""The offline collector embeds the probe unchanged and is valid Windows PowerShell 5.1."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

from procaudit.facts import GET_PROCAUDIT_FACTS, ProbeParams
from procaudit.readiness.collector import probe_sha256, render_collector
from tests.contract.test_scripts import PARSER, PS7_ONLY, _errors


def test_collector_embeds_the_probe_byte_for_byte_and_parses() -> None:
    text = render_collector(ProbeParams(window_hours=48, max_events=500, policy_names=("It's a name",)))
    assert GET_PROCAUDIT_FACTS.text.rstrip("\n") in text
    assert probe_sha256() == hashlib.sha256(GET_PROCAUDIT_FACTS.path.read_bytes()).hexdigest()
    assert text.count(probe_sha256()) == 2  # in the help and in every output file
    assert "-WindowHours 48 -MaxEvents 500 -PolicyNames @('It''s a name')" in text
    source = text.encode()
    assert _errors(PARSER.parse(source).root_node, source) == []
    for pattern, what in PS7_ONLY:
        assert not pattern.search(text), what
    assert re.search(r"^\[CmdletBinding\(\)\]\nparam\(", text, re.M)


def test_cli_writes_a_bom_crlf_script(tmp_path: Path) -> None:
    out = tmp_path / "Collect-ProcAudit.ps1"
    result = subprocess.run(
        [sys.executable, "-m", "procaudit", "collector", "-o", str(out)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert "check --evidence" in result.stderr
