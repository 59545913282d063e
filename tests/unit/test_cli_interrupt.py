"""A Ctrl-C that no command handles still ends with exit 130 and says so (Typer alone would exit silently)."""

from __future__ import annotations

import sys

import pytest
import typer

from procaudit.cli import main as cli_main


def _app_that_is_interrupted(handled: bool) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def work() -> None:
        if handled:  # a command that reports the interruption itself and exits 130
            raise typer.Exit(130)
        raise KeyboardInterrupt  # what the operator's Ctrl-C raises in the middle of a command

    @app.command()
    def other() -> None:  # a second command, so that Typer dispatches by name
        pass

    return app


@pytest.mark.parametrize(("handled", "said"), [(False, True), (True, False)])
def test_an_unhandled_ctrl_c_exits_130_and_says_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], handled: bool, said: bool
) -> None:
    monkeypatch.setattr(cli_main, "app", _app_that_is_interrupted(handled))
    monkeypatch.setattr(sys, "argv", ["procaudit", "work"])
    with pytest.raises(SystemExit) as ended:
        cli_main.main()
    assert ended.value.code == 130
    assert ("interrupted" in capsys.readouterr().err) is said
