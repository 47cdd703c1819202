"""`polyret`'s entry point: exit codes and the one-line messages for user errors and Ctrl-C."""

from __future__ import annotations

import sys

import pytest
import typer

from polyret import cli
from polyret.errors import DataError


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch):
    """Register a throwaway `polyret probe` command whose body the test chooses."""
    bodies = {}

    @cli.app.command("probe")
    def probe() -> None:
        bodies["run"]()

    monkeypatch.setattr(sys, "argv", ["polyret", "probe"])
    yield bodies
    cli.app.registered_commands[:] = [c for c in cli.app.registered_commands if c.name != "probe"]


def _exit_code(capsys) -> tuple[int, str]:
    try:
        cli.main()
    except SystemExit as exit_:
        return int(exit_.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().err


def _raise(error: BaseException):
    def body() -> None:
        raise error

    return body


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (typer.Exit(1), 1, ""),  # e.g. `polyret compare` with a failed run
        (KeyboardInterrupt(), 130, "run the same command again to resume"),
        (DataError("corpus.txt:3: empty text"), 2, "error: corpus.txt:3: empty text"),
    ],
)
def test_exit_codes_and_messages(command, capsys, error, code, message):
    command["run"] = _raise(error)
    got, err = _exit_code(capsys)
    assert got == code and message in err and "Traceback" not in err


def test_a_finished_command_exits_zero(command, capsys):
    command["run"] = lambda: None
    assert _exit_code(capsys) == (0, "")


def test_an_interrupted_training_run_says_to_add_resume(monkeypatch, capsys):
    from polyret import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_training", interrupted)
    monkeypatch.setattr(sys, "argv", ["polyret", "train", "config.yaml"])
    code, err = _exit_code(capsys)
    assert code == 130 and "run the same command with --resume to resume" in err
    monkeypatch.setattr(sys, "argv", ["polyret", "train", "config.yaml", "--resume"])
    code, err = _exit_code(capsys)
    assert code == 130 and "run the same command again to resume" in err
