"""mp push and the canary alert against the lab's SCOM management server, over real PSRP."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from procaudit.content import content_path
from procaudit.detections import mpbuild, scom
from procaudit.detections.rules import CompiledRule, load_rules
from procaudit.errors import RemoteScriptError, UserInputError
from procaudit.filecopy import COPY_FILE, CopyParams, copy_file
from procaudit.lab.eventlog import record_process_start
from procaudit.lab.handlers.common import STAGING
from procaudit.lab.model import InstalledMp, LabHost
from tests.lab.conftest import LabHandle, start_lab
from tests.lab.test_cli import creds, run_cli

SERVER = "lab-scom-01"
MP = mpbuild.DEFAULT_MP_ID


@pytest.fixture(scope="module")
def rules() -> list[CompiledRule]:
    return load_rules(content_path("detections"))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabHandle]:
    yield from start_lab(tmp_path, ["scom", "ready", "no-scom-agent"])


def installed(lab: LabHandle) -> InstalledMp | None:
    server = lab.lab.host(SERVER).scom
    assert server is not None
    return server.management_packs.get(MP)


def backups(host: LabHost) -> list[str]:
    return sorted(path for path in host.files if "\\mp-backup\\" in path)


def marker_event(host: LabHost, nonce: str, image: str = "C:\\Windows\\System32\\cmd.exe") -> None:
    fields = {
        "SubjectUserSid": "S-1-5-21-1-2-3-500",
        "SubjectUserName": "operator",
        "SubjectDomainName": "CORP",
        "SubjectLogonId": "0x3e7",
        "NewProcessId": "0x1a2c",
        "NewProcessName": image,
        "TokenElevationType": "%%1936",
        "ProcessId": "0x4",
        "CommandLine": f"cmd.exe /d /c rem procaudit-verify-{nonce}",
        "ParentProcessName": "C:\\Windows\\System32\\wsmprovhost.exe",
    }
    assert record_process_start(host, fields) is not None, f"{host.name} does not log 4688"


def test_push_installs_then_bumps_each_time_and_keeps_backups(
    lab: LabHandle, rules: list[CompiledRule], tmp_path: Path
) -> None:
    host = lab.lab.host(SERVER)
    with lab.connector(SERVER) as conn:
        first = scom.push(conn, rules, backup_dir=tmp_path / "b")
        assert first.status == "OK", first.message
        assert (first.previous_version, first.installed_version, first.lab) == (None, "1.0.0.0", True)
        assert first.local_backup is None and first.server_backup is None
        staged = host.files[f"{STAGING}\\{MP}.xml"]
        assert hashlib.sha256(staged).hexdigest() == first.sha256
        first_xml = staged

        second = scom.push(conn, rules, backup_dir=tmp_path / "b")
        assert (second.status, second.previous_version, second.installed_version) == ("OK", "1.0.0.0", "1.0.0.1")
        assert second.local_backup is not None and Path(second.local_backup).read_bytes() == first_xml
        assert second.server_backup in backups(host) and host.files[second.server_backup] == first_xml

        third = scom.push(conn, rules, backup_dir=tmp_path / "b")
        assert (third.previous_version, third.installed_version) == ("1.0.0.1", "1.0.0.2")
    mp = installed(lab)
    assert mp is not None and mp.version == "1.0.0.2" and not mp.sealed
    assert "<Version>1.0.0.2</Version>" in (mp.xml or "")


def test_check_changes_nothing(lab: LabHandle, rules: list[CompiledRule], tmp_path: Path) -> None:
    host = lab.lab.host(SERVER)
    with lab.connector(SERVER) as conn:
        assert scom.push(conn, rules).status == "OK"
        files = dict(host.files)
        pending = scom.push(conn, rules, check=True, backup_dir=tmp_path)
    assert pending.status == "PENDING" and pending.new_version == "1.0.0.1"
    assert "would import" in pending.message and pending.local_backup is None
    assert host.files == files and installed(lab).version == "1.0.0.0"  # type: ignore[union-attr]


def test_an_explicit_version_must_be_newer(lab: LabHandle, rules: list[CompiledRule]) -> None:
    with lab.connector(SERVER) as conn:
        assert scom.push(conn, rules, version="2.0.0.0").installed_version == "2.0.0.0"
        with pytest.raises(UserInputError, match=r"not newer than 2\.0\.0\.0"):
            scom.push(conn, rules, version="1.9.9.9")
        with pytest.raises(UserInputError, match="four numbers"):
            scom.push(conn, rules, version="1.2")


def test_the_management_group_refuses_an_older_pack(lab: LabHandle, rules: list[CompiledRule]) -> None:
    """An import that loses a race (someone installed a newer version after procaudit read it) is refused."""
    with lab.connector(SERVER) as conn:
        assert scom.push(conn, rules, version="3.0.0.0").status == "OK"
        older = mpbuild.build(rules, version="2.5.0.0").xml.encode()
        copy_file(conn, f"{MP}.xml", older)
        result = conn.run(
            scom.IMPORT_MP,
            scom.ImportParams(
                file_name=f"{MP}.xml", sha256=hashlib.sha256(older).hexdigest(), name=MP, version="2.5.0.0"
            ),
        )
    assert not result.imported and result.installed_version == "3.0.0.0"
    assert result.refusal is not None and "could not be imported" in result.refusal
    assert "Verification failed with 1 errors" in result.refusal and "2.5.0.0" in result.refusal


def test_a_missing_library_version_is_a_clear_failure(lab: LabHandle, rules: list[CompiledRule]) -> None:
    server = lab.lab.host(SERVER).scom
    assert server is not None
    server.management_packs["System.Health.Library"].version = "6.1.7221.0"  # older than the MP references
    with lab.connector(SERVER) as conn:
        outcome = scom.push(conn, rules)
    assert outcome.status == "FAIL" and installed(lab) is None
    assert "refused" in outcome.message and "Version mismatch" in outcome.message
    assert "requested from the database was version 7.0.8433.0 but the actual version available is 6.1.7221.0" in (
        outcome.message
    )


def test_a_sealed_pack_of_the_same_id_is_not_replaced(lab: LabHandle, rules: list[CompiledRule]) -> None:
    server = lab.lab.host(SERVER).scom
    assert server is not None
    server.management_packs[MP] = InstalledMp(
        MP, "1.0.0.0", True, "sealed", imported=server.management_packs["System.Library"].imported
    )
    with lab.connector(SERVER) as conn:
        outcome = scom.push(conn, rules)
    assert outcome.status == "FAIL" and "installed sealed" in outcome.message


def test_no_operations_manager_module_is_an_error(lab: LabHandle, rules: list[CompiledRule]) -> None:
    with lab.connector("lab-ready-01") as conn:
        outcome = scom.push(conn, rules)
    assert outcome.status == "ERROR" and outcome.error_kind == "script"
    assert "OperationsManager" in outcome.message


def test_copy_checks_length_and_hash_on_the_host(lab: LabHandle) -> None:
    host = lab.lab.host("lab-ready-01")
    data = secrets.token_bytes(300_000)  # several chunks, well past one WinRM envelope
    with lab.connector("lab-ready-01") as conn:
        result = copy_file(conn, "blob.bin", data)
        assert result.written and host.files[result.path] == data
        assert copy_file(conn, "what-if.bin", b"abc", what_if=True).written is False
        assert f"{STAGING}\\what-if.bin" not in host.files
        assert copy_file(conn, "empty.bin", b"").length == 0
        wrong = CopyParams(name="bad.bin", sha256="0" * 64, length=3)
        with pytest.raises(RemoteScriptError, match="arrived damaged"):
            conn.run(COPY_FILE, wrong, input=[base64.b64encode(b"abc").decode()])
        with pytest.raises(RemoteScriptError, match="does not match"):
            conn.run(COPY_FILE, CopyParams(name="..\\x", sha256="0" * 64, length=0), input=[""])
    assert f"{STAGING}\\bad.bin" not in host.files
    with pytest.raises(UserInputError):
        copy_file(conn, "dir/x", b"")


def test_canary_alert_arrives_from_an_agent_host(lab: LabHandle, rules: list[CompiledRule]) -> None:
    nonce = secrets.token_hex(16)
    early = secrets.token_hex(16)
    marker_event(lab.lab.host("lab-ready-01"), early)  # logged before the pack is there: no alert
    with lab.connector(SERVER) as conn:
        missing = scom.find_canary_alert(conn, nonce, timeout=0)
        assert missing.status == "FAIL" and missing.rule_found is False and "push" in missing.message
        assert scom.push(conn, rules).status == "OK"
        marker_event(lab.lab.host("lab-ready-01"), nonce)
        marker_event(lab.lab.host("lab-ready-01"), nonce)  # a second start: the same alert, repeated
        marker_event(lab.lab.host("lab-no-scom-agent-01"), nonce)  # no agent: nothing reaches SCOM
        found = scom.find_canary_alert(conn, nonce, timeout=0)
        assert scom.find_canary_alert(conn, early, timeout=0).status == "FAIL"
        notepad = secrets.token_hex(16)  # the marker in another program: the rule's expression does not match
        marker_event(lab.lab.host("lab-ready-01"), notepad, image="C:\\Windows\\System32\\notepad.exe")
        assert scom.find_canary_alert(conn, notepad, timeout=0).status == "FAIL"
        other = scom.find_canary_alert(conn, secrets.token_hex(16), timeout=0)
    assert found.status == "PASS" and found.lab and found.polls == 1
    assert [(a.computer_name, a.repeat_count, a.severity) for a in found.alerts] == [("LAB-READY-01", 1, "Information")]
    assert found.alerts[0].name == "procaudit verification marker (canary)"
    assert other.status == "FAIL" and other.rule_found and "no canary alert" in other.message


def test_canary_polling_waits_for_the_alert(lab: LabHandle, rules: list[CompiledRule]) -> None:
    nonce = secrets.token_hex(16)
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        if len(slept) == 2:
            marker_event(lab.lab.host("lab-ready-01"), nonce)

    with lab.connector(SERVER) as conn:
        scom.push(conn, rules)
        found = scom.find_canary_alert(conn, nonce, timeout=60, interval=10, clock=lambda: now[0], sleep=sleep)
        late = scom.find_canary_alert(
            conn, secrets.token_hex(16), timeout=25, interval=10, clock=lambda: now[0], sleep=sleep
        )
    assert found.status == "PASS" and found.polls == 3 and slept[:2] == [10, 10]
    assert late.status == "FAIL" and late.polls == 3


def test_a_disabled_canary_rule_raises_nothing(lab: LabHandle, rules: list[CompiledRule]) -> None:
    nonce = secrets.token_hex(16)
    with lab.connector(SERVER) as conn:
        scom.push(conn, rules)
        mp = installed(lab)
        assert mp is not None and mp.xml is not None
        root = etree.fromstring(mp.xml.encode())
        rule = root.find(f"Monitoring/Rules/Rule[@ID='{scom.canary_rule_name()}']")
        assert rule is not None
        rule.set("Enabled", "false")
        mp.xml = etree.tostring(root, encoding="unicode")
        marker_event(lab.lab.host("lab-ready-01"), nonce)
        result = scom.find_canary_alert(conn, nonce, timeout=0)
    assert result.status == "FAIL" and "disabled" in result.message


def test_bad_nonce_is_an_input_error(lab: LabHandle) -> None:
    with lab.connector(SERVER) as conn, pytest.raises(UserInputError, match="32 lower-case"):
        scom.find_canary_alert(conn, "ABC")


# --- the command line ------------------------------------------------------------------------------------------


def test_cli_push_and_verify_alert(lab: LabHandle, tmp_path: Path) -> None:
    inv = str(lab.inventory)
    env = creds(lab)
    backup = str(tmp_path / "backups")
    first = run_cli("mp", "push", "-i", inv, "--server", SERVER, "--format", "json", "--backup-dir", backup, env=env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    (host,) = report["hosts"]
    assert (host["host"], host["status"], host["lab"], host["installed_version"]) == (SERVER, "OK", True, "1.0.0.0")
    second = run_cli("mp", "push", "-i", inv, "--server", SERVER, "--backup-dir", backup, env=env)
    assert second.returncode == 0 and "1.0.0.1" in second.stdout and "LAB" in second.stdout
    assert len(list(Path(backup).glob(f"{MP}-1.0.0.0-*.xml"))) == 1
    check = run_cli("mp", "push", "-i", inv, "--server", SERVER, "--check", env=env)
    assert check.returncode == 1 and "would import" in check.stderr
    older = run_cli("mp", "push", "-i", inv, "--server", SERVER, "--version", "1.0.0.0", env=env)
    assert older.returncode == 2 and "not newer" in older.stderr and "Traceback" not in older.stderr
    several = run_cli("mp", "push", "-i", inv, "--server", "lab-*", env=env)
    assert several.returncode == 2 and "name one" in several.stderr

    nonce = secrets.token_hex(16)
    args = ["mp", "verify-alert", "-i", inv, "--server", SERVER, "--nonce", nonce, "--timeout", "0"]
    missing = run_cli(*args, "--format", "json", env=env)
    assert missing.returncode == 1 and json.loads(missing.stdout)["hosts"][0]["status"] == "FAIL"
    marker_event(lab.lab.host("lab-ready-01"), nonce)
    found = run_cli(*args, "--format", "json", env=env)
    assert found.returncode == 0, found.stderr
    alert = json.loads(found.stdout)["hosts"][0]
    assert alert["status"] == "PASS" and alert["lab"] is True and alert["alerts"][0]["computer_name"] == "LAB-READY-01"
    bad = run_cli("mp", "verify-alert", "-i", inv, "--server", SERVER, "--nonce", "xyz", env=env)
    assert bad.returncode == 2 and "32 lower-case" in bad.stderr
    assert lab.credentials.password not in first.stdout + first.stderr + found.stdout + found.stderr


def test_cli_push_to_an_unreachable_server(tmp_path: Path) -> None:
    for handle in start_lab(tmp_path, ["scom"], ["lab-scom-01=down"]):
        result = run_cli(
            "mp",
            "push",
            "-i",
            str(handle.inventory),
            "--server",
            SERVER,
            "--format",
            "json",
            "--connect-timeout",
            "1",
            env=creds(handle),
        )
        assert result.returncode == 3, result.stderr
        assert json.loads(result.stdout)["hosts"][0]["error_kind"] == "unreachable"
