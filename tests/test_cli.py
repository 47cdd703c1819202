"""`polyret`'s entry point: exit codes and the one-line messages for user errors and Ctrl-C."""

from __future__ import annotations

import sys
from pathlib import Path

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


# ------------------------------------------------------------------------------------------------ usage errors
def _main(monkeypatch: pytest.MonkeyPatch, capsys, *args: str) -> tuple[int, str, str]:
    """``polyret ARGS``: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["polyret", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str) -> str:
    """The one ``error:`` line of ``err`` (progress bars of model loading may come before it)."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and err.rstrip().endswith(lines[0]) and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--bogus"], "No such option: --bogus"),
        (["encode"], "Missing option '--model'"),
        (["encode", "-m", "m", "-i", "in.txt", "-o", "o.npy", "--batch-size", "abc"], "'--batch-size'"),
        (["nosuch"], "No such command 'nosuch'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(monkeypatch, capsys, args, expected):
    code, _, err = _main(monkeypatch, capsys, *args)
    assert code == 2 and expected in _one_error_line(err)


@pytest.mark.parametrize("args", [[], ["models"], ["data"]])
def test_a_bare_group_shows_its_help_without_a_traceback(monkeypatch, capsys, args):
    code, out, err = _main(monkeypatch, capsys, *args)
    assert code == 2 and "Usage" in out + err and "Traceback" not in out + err


# ------------------------------------------------------------------------------------------------ markup
@pytest.mark.parametrize(
    "message",
    ["xquad-r/de.json: data[0].sentence_breaks[1]: expected [start, end]", "runs/a[/b]c/x.json: file not found"],
)
def test_messages_are_printed_as_text_not_markup(command, capsys, message):
    command["run"] = _raise(DataError(message))
    code, err = _exit_code(capsys)
    assert code == 2 and _one_error_line(err) == f"error: {message}"


def test_a_failed_eval_task_shows_its_message_literally(monkeypatch, capsys, tmp_path):
    from polyret.eval import run as eval_run

    def failing(*args, **kwargs):
        raise eval_run.EvalFailedError([("xquad-r", "de.json: expected [start, end]")], [])

    monkeypatch.setattr(eval_run, "run_eval", failing)
    model = "models/a[/b]m"  # in the table's title
    code, _, err = _main(monkeypatch, capsys, "eval", "-m", model, "-t", "xquad-r", "--output", str(tmp_path / "o"))
    # the failure stands on its own line (not in a table cell), literally; then one error line sums up
    assert code == 2 and "failed xquad-r: de.json: expected [start, end]" in err.splitlines()
    assert _one_error_line(err) == "error: 1 of 1 tasks failed (xquad-r): de.json: expected [start, end]"


def test_a_path_with_markup_in_it_prints_literally(monkeypatch, capsys, tmp_path, tiny_model_dir):
    (tmp_path / "in.txt").write_text("one\ntwo\n", encoding="utf-8")
    target = tmp_path / "a[/b]c" / "[bold]out.npy"
    monkeypatch.setenv("POLYRET_HOME", str(tmp_path / "home"))
    code, _, err = _main(
        monkeypatch, capsys, "encode", "-m", str(tiny_model_dir), "-i", str(tmp_path / "in.txt"), "-o", str(target)
    )
    assert code == 0 and f"wrote {target}: 2 x 32" in err and target.is_file()


# ------------------------------------------------------------------------------------------------ write failures
def _encode_args(tmp_path, output: str, model: str = "no-such-model-folder/x") -> list[str]:
    """A model that cannot load: an error about the output proves the output was checked first."""
    (tmp_path / "in.txt").write_text("one\ntwo\n", encoding="utf-8")
    return ["encode", "-m", model, "-i", str(tmp_path / "in.txt"), "-o", output]


def test_unwritable_outputs_fail_before_any_work(monkeypatch, capsys, tmp_path):
    from helpers.filesystem import read_only_folder

    monkeypatch.setenv("POLYRET_HOME", str(tmp_path / "home"))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        (_encode_args(tmp_path, str(read_only_folder(tmp_path) / "out.npy")), "output is not writable"),
        (_encode_args(tmp_path, str(a_file / "out.npy")), "a-file is a file, so the output folder cannot be created"),
        (["eval", "-m", "no-such-model-folder/x", "-t", "tatoeba", "--output", str(a_file)], "output is a file"),
        (["search", "-m", "m", "--shards", str(tmp_path), "--queries", "q.txt", "-o", str(a_file / "run")], "a-file"),
        (["compare", "config.yaml", "--study-dir", str(a_file)], "output is a file"),
    ]
    for args, expected in cases:
        code, _, err = _main(monkeypatch, capsys, *args)
        assert code == 2 and expected in _one_error_line(err), args


def test_an_unwritable_polyret_home_fails_before_the_model_loads(monkeypatch, capsys, tmp_path):
    from helpers.filesystem import read_only_folder

    monkeypatch.setenv("POLYRET_HOME", str(read_only_folder(tmp_path) / "polyret"))
    code, _, err = _main(monkeypatch, capsys, *_encode_args(tmp_path, str(tmp_path / "out.npy")))
    line = _one_error_line(err)
    assert code == 2 and "$POLYRET_HOME is not writable" in line and "set POLYRET_HOME to a writable folder" in line
    assert not (tmp_path / "out.npy").exists()
    code, _, err = _main(monkeypatch, capsys, *_encode_args(tmp_path, str(tmp_path / "out.npy")), "--no-cache")
    line = _one_error_line(err)  # without the cache the home is not needed: the model is the next problem
    assert code == 2 and "no-such-model-folder/x" in line and "POLYRET_HOME" not in line


def test_a_full_disk_is_one_line_with_no_partial_output(monkeypatch, capsys, tmp_path, tiny_model_dir):
    import errno

    import numpy as np

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setenv("POLYRET_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(np, "save", full)
    args = _encode_args(tmp_path, str(tmp_path / "out.npy"), str(tiny_model_dir))
    code, _, err = _main(monkeypatch, capsys, *args, "--no-cache")
    assert code == 2 and "out.npy: cannot write (no space left on the device)" in _one_error_line(err)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.txt"]


def test_an_empty_input_is_an_error_not_an_empty_output(monkeypatch, capsys, tmp_path, tiny_model_dir):
    monkeypatch.setenv("POLYRET_HOME", str(tmp_path / "home"))
    args = _encode_args(tmp_path, str(tmp_path / "out.npy"), str(tiny_model_dir))
    (tmp_path / "in.txt").write_bytes(b"")
    code, _, err = _main(monkeypatch, capsys, *args)
    assert code == 2 and "in.txt: the file is empty" in _one_error_line(err) and not (tmp_path / "out.npy").exists()


# ------------------------------------------------------------------------------------------------ damaged weights
@pytest.fixture
def damaged_model(tmp_path, tiny_model_dir):
    import shutil

    model = shutil.copytree(tiny_model_dir, tmp_path / "damaged")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a download cut short
    return model


def test_damaged_weights_are_one_line_naming_the_file_in_encode_eval_and_train(
    monkeypatch, capsys, tmp_path, damaged_model
):
    import json

    monkeypatch.setenv("POLYRET_HOME", str(tmp_path / "home"))
    weights = str(damaged_model / "model.safetensors")
    code, _, err = _main(monkeypatch, capsys, *_encode_args(tmp_path, str(tmp_path / "out.npy"), str(damaged_model)))
    assert code == 2 and weights in _one_error_line(err) and "damaged model weights" in err

    tatoeba = tmp_path / "data" / "tatoeba" / "v1"
    tatoeba.mkdir(parents=True)
    (tatoeba / "tatoeba.deu-eng.deu").write_text("die Katze\nder Hund\n", encoding="utf-8")
    (tatoeba / "tatoeba.deu-eng.eng").write_text("the cat\nthe dog\n", encoding="utf-8")
    monkeypatch.setenv("POLYRET_DATA_DIR", str(tmp_path / "data"))
    eval_args = [
        "eval",
        "-m",
        str(damaged_model),
        "-t",
        "tatoeba",
        "--languages",
        "de",
        "--output",
        str(tmp_path / "e"),
    ]
    code, _, err = _main(monkeypatch, capsys, *eval_args)
    assert code == 2 and weights in _one_error_line(err)

    items = tmp_path / "items.jsonl"
    items.write_text(
        "".join(
            json.dumps({"id": f"i{i}", "lang": "en", "query": f"q {i}", "passage": f"p {i}"}) + "\n" for i in range(8)
        )
    )
    config = tmp_path / "train.yaml"
    config.write_text(
        json.dumps(
            {
                "method": "mono",
                "model": {"name": str(damaged_model)},
                "data": [{"format": "jsonl", "path": str(items)}],
                "batch_size": 4,
                "max_steps": 1,
                "validation": {"fraction": 0.0},
            }
        )
    )
    code, _, err = _main(monkeypatch, capsys, "train", str(config), "--run-dir", str(tmp_path / "run"))
    assert code == 2 and weights in _one_error_line(err)
    assert not (tmp_path / "run" / "config.yaml").exists()  # nothing started, so nothing blocks a rerun


# ------------------------------------------------------------------------------------------------ report files
def _fake_report(folder: Path):
    from polyret.report.render import ReportFiles

    def write_report(study_dir, **options):
        return ReportFiles(
            markdown=folder / "report.md",
            html=folder / "report.html",
            claims=folder / "claims.json",
            figures=[folder / "a.png", folder / "a.svg"],
            latex=folder / "report.tex",
        )

    return write_report


def test_polyret_report_names_the_claims_json_it_wrote(monkeypatch, capsys, tmp_path):
    from polyret.report import render

    monkeypatch.setattr(render, "write_report", _fake_report(tmp_path))
    code, _, err = _main(monkeypatch, capsys, "report", str(tmp_path), "--no-figures")
    expected = f"report: {tmp_path / 'report.md'}, {tmp_path / 'report.html'}, {tmp_path / 'report.tex'} and "
    assert code == 0 and f"{expected}{tmp_path / 'claims.json'} (1 figures)" in err.splitlines()


def test_polyret_compare_names_the_claims_json_it_wrote(monkeypatch, capsys, tmp_path):
    from types import SimpleNamespace

    from polyret.report import render
    from polyret.study import runner

    status = SimpleNamespace(summary=lambda: "1 run(s) done", runs=[], failed=[], ok=True)
    monkeypatch.setattr(runner, "run_study", lambda *args, **kwargs: status)
    monkeypatch.setattr(render, "write_report", _fake_report(tmp_path))
    code, _, err = _main(monkeypatch, capsys, "compare", "study.yaml", "--study-dir", str(tmp_path))
    assert code == 0 and any(line.endswith(f" and {tmp_path / 'claims.json'}") for line in err.splitlines()), err


def test_skipped_tasks_print_as_text_not_markup(capsys):
    cli._print_skipped({"xquad-r": "no language of [bold]jv[/bold] in it"})
    assert capsys.readouterr().err.splitlines() == ["skipped xquad-r: no language of [bold]jv[/bold] in it"]
