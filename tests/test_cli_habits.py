"""The command line as people expect one: choices in --help, plain flags, clear messages, progress in logs."""

from __future__ import annotations

import io
from pathlib import Path
from typing import get_args

import pytest
from rich.console import Console
from typer.testing import CliRunner

from helpers.synthetic_study import CallLog, FakeEvaluator, FakeTrainer, write_study_config
from polyret import cli
from polyret.progress import LineProgress
from polyret.train.methods import method_names

runner = CliRunner()


def _help(*command: str) -> str:
    result = runner.invoke(cli.app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # click wraps long lines


@pytest.mark.parametrize(
    ("command", "option", "choices"),
    [
        (("encode",), "--prefix", "query|passage|none"),
        (("encode",), "--pooling", "mean|cls"),
        (("encode",), "--dtype", "float16|float32"),
        (("eval",), "--candidate-text", "sentence|sentence+context"),
        (("eval",), "--pooling", "mean|cls"),
        (("search",), "--index", "flat|ivf-flat|ivf-pq|hnsw"),
        (("mine",), "--margin", "ratio|distance|absolute"),
        (("mine",), "--index", "flat|ivf-flat|ivf-pq|hnsw"),
        (("report",), "--correction", "holm|bh"),
        (("train", "x.yaml"), "--method", "|".join(method_names(trained=True))),
    ],
)
def test_choice_options_list_their_values_and_refuse_others(command, option, choices):
    assert f"{option} <{choices}>" in _help(*command)
    result = runner.invoke(cli.app, [*command, option, "bogus"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"Invalid value for '{option}'" in message and all(f"'{c}'" in message for c in choices.split("|"))


def test_cli_choices_are_the_library_values():
    from polyret.encode.encoder import POOLINGS
    from polyret.encode.shards import DTYPES
    from polyret.eval.lareqa import CANDIDATE_TEXTS
    from polyret.mining.index import IndexKind
    from polyret.mining.margin import MARGINS
    from polyret.report.significance import Correction

    assert get_args(cli.Pooling) == POOLINGS and set(get_args(cli.ShardDtype)) == set(DTYPES)
    assert get_args(cli.CandidateText) == CANDIDATE_TEXTS and get_args(cli.IndexKind) == get_args(IndexKind)
    assert get_args(cli.MarginKind) == MARGINS and get_args(cli.Correction) == get_args(Correction)


def test_boolean_options_are_shown_as_flags():
    top = _help()
    assert "-v, --verbose Debug logging." in top and "<bool>" not in top
    assert "--keep-going / --stop-on-error" in _help("eval")
    assert "--force Rebuild" in _help("models", "prepare") and "--force Prepare again" in _help("data", "prepare")
    for command in ("encode", "mine", "train", "compare", "report", "search"):
        assert "<bool>" not in _help(command), command


def test_train_without_a_config_asks_for_the_config():
    result = runner.invoke(cli.app, ["train"])
    assert result.exit_code == 2
    assert "Missing argument 'CONFIG'" in result.output and "method" not in result.output


def test_a_failed_task_is_reported_on_its_own_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from polyret.eval import run as eval_run

    message = "tatoeba file not found: " + "/very/long/path/" * 12 + "tatoeba.jav-eng.jav [see the README]"

    def failing(model, names, out, options, keep_going):
        raise eval_run.EvalFailedError([("tatoeba", message)], [])

    monkeypatch.setattr(eval_run, "run_eval", failing)
    result = runner.invoke(cli.app, ["eval", "-m", "tiny", "-t", "tatoeba", "--output", str(tmp_path)])
    assert result.exit_code == 1 and "1 of 1 tasks failed (tatoeba)" in str(result.exception)
    assert f"failed tatoeba: {message}" in result.output.splitlines()  # whole, unwrapped, markup left as text
    assert "│" not in result.output and "┃" not in result.output  # no table around it


def test_line_progress_reports_count_rate_and_eta_every_interval():
    now, lines = [0.0], []
    progress = LineProgress("encoding 400 texts", 400, "texts", clock=lambda: now[0], write=lines.append)
    for _ in range(4):
        now[0] += 4.0  # 4 s per batch of 100: a line every 10 s, and at the end
        progress.advance(100)
    assert lines == [
        "encoding 400 texts: 300/400 texts (75%), 25.0 texts/s, ETA 4s, elapsed 12s",
        "encoding 400 texts: 400/400 texts (100%), 25.0 texts/s, elapsed 16s",
    ]


def test_encoding_writes_progress_lines_when_stderr_is_not_a_terminal(capsys):
    from polyret.encode.batching import progress_bar

    with progress_bar(True, "encoding", 64, "texts") as advance:
        for _ in range(2):
            advance(32)
    assert "encoding 64 texts: 64/64 texts (100%)" in capsys.readouterr().err


def test_study_runner_writes_progress_lines_when_not_on_a_terminal(tmp_path: Path):
    from polyret.study.runner import run_study

    config = write_study_config(tmp_path / "study.yaml")
    calls = CallLog(tmp_path / "calls.jsonl")
    log = io.StringIO()
    run_study(
        config,
        tmp_path / "study",
        ["tiny__zero-shot", "tiny__mono__s0"],
        trainer=FakeTrainer(calls),
        evaluator=FakeEvaluator(calls),
        console=Console(file=log, width=100),
    )
    lines = log.getvalue().splitlines()
    assert any(
        line.startswith("study ") and "1/2 runs" in line and "tiny__mono__s0: training" in line for line in lines
    )
    assert any("2/2 runs (100%)" in line for line in lines)


def test_data_list_shows_bucc_and_partial_miracl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("POLYRET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("POLYRET_HOME", str(tmp_path / "home"))
    (tmp_path / "miracl").mkdir()
    for kind in ("topics", "qrels"):
        (tmp_path / "miracl" / f"{kind}.miracl-v1.0-sw-dev.tsv").write_text("0\tswali\n" if kind == "topics" else "")
    result = runner.invoke(cli.app, ["data", "list"])
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in result.output.splitlines()}
    assert rows["bucc"][:2] == ["missing", str(tmp_path / "bucc2018")]
    state, _, note = rows["miracl"]
    assert state == "partial" and "topics/qrels for 1 of" in note and "(sw)" in note and "no passage corpus" in note
