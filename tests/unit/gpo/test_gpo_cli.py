"""``procaudit gpo render``: a thin command over render_gpo_backup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from procaudit.cli.gpo import app
from procaudit.errors import UserInputError
from procaudit.gpo.errors import GpoSettingsError, OutputDirError
from procaudit.gpo.render import GpoIds
from procaudit.gpo.settings import GpoSettings

SRC = Path(__file__).resolve().parents[3] / "src"
PYTHONPATH = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_render_writes_the_backup_and_reports_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "gpo"
    result = CliRunner().invoke(app, ["render", "--output", str(out), "--log-size", "192MB", "--include-failure"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    (backup_dir,) = out.iterdir()
    assert sorted(tree(backup_dir)) == [
        "Backup.xml",
        "DomainSysvol/GPO/Machine/microsoft/windows nt/Audit/audit.csv",
        "DomainSysvol/GPO/Machine/microsoft/windows nt/SecEdit/GptTmpl.inf",
        "DomainSysvol/GPO/Machine/registry.pol",
        "bkupInfo.xml",
    ]
    err = result.stderr
    assert f"Wrote GPO backup {backup_dir.name}" in err
    assert f"{backup_dir.name}/DomainSysvol/GPO/Machine/registry.pol" in err
    assert "Success and Failure" in err
    assert "196608 KB (192 MB)" in err
    assert f"Import-GPO -BackupId '{backup_dir.name}'" in err


def test_deterministic_render_is_reproducible(tmp_path: Path) -> None:
    args = ["render", "--deterministic", "--backup-time", "2024-05-01T12:00:00", "--name", "Audit 4688"]
    first = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "a")])
    second = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "b")])
    assert first.exit_code == second.exit_code == 0
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    expected = "{" + str(GpoIds.derived(GpoSettings(display_name="Audit 4688")).backup_id).upper() + "}"
    assert [p.name for p in (tmp_path / "a").iterdir()] == [expected]
    assert b"<![CDATA[2024-05-01T12:00:00]]>" in (tmp_path / "a" / expected / "bkupInfo.xml").read_bytes()


def test_without_deterministic_every_render_is_a_new_backup(tmp_path: Path) -> None:
    CliRunner().invoke(app, ["render", "-o", str(tmp_path / "a")])
    CliRunner().invoke(app, ["render", "-o", str(tmp_path / "b")])
    assert [p.name for p in (tmp_path / "a").iterdir()] != [p.name for p in (tmp_path / "b").iterdir()]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (["--log-size", "196608"], GpoSettingsError, "--log-size: '196608' has no unit"),
        (["--log-size", "1MB"], GpoSettingsError, "outside the range"),
        (["--log-size", "lots"], GpoSettingsError, "is not a size"),
        (["--domain", "not a domain"], GpoSettingsError, "--domain: 'not a domain' is not a DNS domain name"),
        (["--name", ""], GpoSettingsError, "--name: the GPO name must not be empty"),
        (["--backup-time", "yesterday"], GpoSettingsError, "--backup-time: 'yesterday' is not an ISO 8601 time"),
    ],
)
def test_bad_input_is_a_user_input_error(tmp_path: Path, args: list[str], error: type[Exception], message: str) -> None:
    result = CliRunner().invoke(app, ["render", "-o", str(tmp_path / "out"), *args])
    assert isinstance(result.exception, error)
    assert isinstance(result.exception, UserInputError)
    assert message in str(result.exception)
    assert not (tmp_path / "out").exists()


def test_refuses_a_non_empty_output_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    refused = CliRunner().invoke(app, ["render", "-o", str(out)])
    assert isinstance(refused.exception, OutputDirError)
    assert "--force" in str(refused.exception)
    forced = CliRunner().invoke(app, ["render", "-o", str(out), "--force"])
    assert forced.exit_code == 0, forced.stderr
    assert (out / "notes.txt").read_text() == "keep me"
    assert "also holds notes.txt; import by -BackupId" in forced.stderr


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(app, ["render", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--output", "--name", "--domain", "--log-size", "--include-failure", "--deterministic", "--force"):
        assert option in result.stdout


def _main_unavailable() -> str | None:
    probe = subprocess.run(
        [sys.executable, "-c", "import procaudit.cli.main"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
        check=False,
    )
    if probe.returncode:
        return "procaudit.cli.main cannot be imported here: " + probe.stderr.strip().splitlines()[-1]
    return None


def test_full_cli_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    reason = _main_unavailable()
    if reason:
        pytest.skip(reason)
    command = [sys.executable, "-c", "from procaudit.cli.main import main; main()"]
    done = subprocess.run(
        [*command, "gpo", "render", "-o", str(tmp_path / "out"), "--log-size", "12"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": PYTHONPATH, "COLUMNS": "200"},
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: --log-size: '12' has no unit")
