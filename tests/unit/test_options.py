"""The shared connection options: ranges checked once, one password for one account, prompts off stdout."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest

from procaudit.cli.options import ConnectionArgs, open_session, remoting_overrides
from procaudit.credentials import resolve_credentials
from procaudit.errors import UserInputError
from procaudit.inventory import Overrides

TWO_USERS = """\
groups:
  web:
    hosts:
      web01: {user: CORP\\web-admin}
  sql:
    hosts:
      sql01: {user: CORP\\sql-admin}
      sql02:
"""


def inventory(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("PROCAUDIT_USER", raising=False)
    monkeypatch.setenv("PROCAUDIT_PASSWORD", "One-Pa55word")
    return "One-Pa55word"


def test_hosts_naming_different_users_are_refused(tmp_path: Path, password: str) -> None:
    path = inventory(tmp_path, TWO_USERS)
    with pytest.raises(UserInputError, match=r"2 different users \(CORP\\sql-admin, CORP\\web-admin\).*--user"):
        open_session(ConnectionArgs(path))


def test_one_named_user_serves_every_selected_host(tmp_path: Path, password: str) -> None:
    session = open_session(ConnectionArgs(inventory(tmp_path, TWO_USERS), limit="sql"))
    connectors = [session.connect(t) for t in session.targets]
    # sql02 names no user: it uses the account sql01 names, the only one the password is for.
    assert [c._credentials for c in connectors] == [resolve_credentials("CORP\\sql-admin")] * 2  # type: ignore[attr-defined]


def test_user_option_wins_over_the_inventory(tmp_path: Path, password: str) -> None:
    session = open_session(ConnectionArgs(inventory(tmp_path, TWO_USERS), overrides=Overrides(user="CORP\\ops")))
    assert {t.username for t in session.targets} == {"CORP\\ops"}
    assert {c._credentials.username for c in map(session.connect, session.targets)} == {"CORP\\ops"}  # type: ignore[attr-defined]


def test_the_user_prompt_goes_to_stderr(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("PROCAUDIT_USER", raising=False)
    monkeypatch.setenv("PROCAUDIT_PASSWORD", "pw")
    monkeypatch.setattr("sys.stdin", Terminal("CORP\\typed\n"))
    credentials = resolve_credentials(None)
    assert credentials is not None and credentials.username == "CORP\\typed"
    captured = capsys.readouterr()
    assert captured.out == "" and "WinRM user" in captured.err


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"port": 0}, "--port must be between 1 and 65535, not 0"),
        ({"port": 65536}, "--port must be between 1 and 65535"),
        ({"connect_timeout": 0.0}, "--connect-timeout must be a positive"),
        ({"operation_timeout": -5}, "--operation-timeout must be a positive"),
        ({"script_timeout": math.nan}, "--script-timeout must be a positive"),
        ({"connect_timeout": math.inf}, "--connect-timeout must be a positive"),
        ({"transport": "http", "no_verify": True}, "--no-verify apply to HTTPS certificates"),
    ],
)
def test_out_of_range_options_are_refused(given: dict[str, object], message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        remoting_overrides(**given)  # type: ignore[arg-type]


def test_ca_bundle_over_http_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not checked here")
    with pytest.raises(UserInputError, match="--ca-bundle apply to HTTPS certificates"):
        remoting_overrides(transport="http", ca_bundle=bundle)
    assert remoting_overrides(transport="https", ca_bundle=bundle, port=65535).ca_bundle == bundle
