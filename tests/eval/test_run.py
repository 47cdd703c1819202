"""Task registry, run_eval and the `polyret eval` command, with a fake encoder and tiny LAReQA files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from helpers.lookup_encoder import LookupEncoder
from helpers.squad import lareqa_paragraph
from polyret.errors import UnknownNameError
from polyret.eval import run as run_module
from polyret.eval.results import read_per_query, read_result
from polyret.eval.run import EvalFailedError, EvalOptions, run_eval
from polyret.eval.tasks import (
    TASKS,
    TaskUnavailableError,
    accepted_options,
    get_task,
    parse_tasks,
    run_task,
    task_names,
)


def hash_encoder() -> LookupEncoder:
    """Deterministic pseudo-random unit vectors per (prefix + text)."""
    return LookupEncoder(dim=8, prefixed=True)


@pytest.fixture
def tiny_data(tmp_path, monkeypatch) -> Path:
    """XQuAD-R-shaped files for en and de under a data root that POLYRET_DATA_DIR points to."""
    root = tmp_path / "data"
    folder = root / "lareqa" / "xquad-r"
    folder.mkdir(parents=True)
    for lang in ("en", "de"):
        payload = {
            "data": [
                {
                    "paragraphs": [
                        lareqa_paragraph(
                            [f"{lang} s{i}" for i in range(4)], [(f"q{i}", f"{lang} question {i}", i) for i in range(4)]
                        ),
                    ]
                }
            ]
        }
        (folder / f"{lang}.json").write_text(json.dumps(payload), encoding="utf-8")
    monkeypatch.setenv("POLYRET_DATA_DIR", str(root))
    return root


def test_registry_names_and_unknown_task():
    assert set(task_names()) == {"xquad-r", "mlqa-r", "tatoeba", "bucc", "bucc-style", "miracl", "udhr"}
    with pytest.raises(UnknownNameError, match=r"unknown task 'xquad'.*valid: bucc, bucc-style"):
        get_task("xquad")
    assert parse_tasks("xquad-r, mlqa-r,xquad-r") == ["xquad-r", "mlqa-r"]
    assert parse_tasks(["xquad-r", "udhr,mlqa-r"]) == ["xquad-r", "udhr", "mlqa-r"]
    with pytest.raises(UnknownNameError):
        parse_tasks("xquad-r,nope")
    assert get_task("xquad-r").__name__ == "evaluate_lareqa"


def test_missing_task_module_is_isolated(monkeypatch):
    missing = dataclasses.replace(TASKS["tatoeba"], evaluate="polyret.eval.not_written_yet:evaluate_tatoeba")
    monkeypatch.setitem(TASKS, "tatoeba", missing)
    with pytest.raises(TaskUnavailableError, match="task 'tatoeba' is not available"):
        get_task("tatoeba")
    assert get_task("mlqa-r").__name__ == "evaluate_lareqa"  # the others still load


def test_accepted_options_filters_by_signature():
    def task(encoder, languages=None, output_dir=None):
        return None

    def open_task(encoder, **kwargs):
        return None

    assert accepted_options(task, {"languages": ["en"], "candidate_text": "sentence", "articles": None}) == (
        {"languages": ["en"]},
        ["candidate_text"],
    )
    assert accepted_options(open_task, {"candidate_text": "sentence"}) == ({"candidate_text": "sentence"}, [])


def test_run_task_passes_fixed_and_filtered_options(tiny_data, tmp_path):
    result = run_task(
        "xquad-r", hash_encoder(), output_dir=None, candidate_text="sentence", unknown_option=1, show_progress=False
    )
    assert result.task == "xquad-r" and result.config["candidate_text"] == "sentence"
    assert set(result.languages) == {"de-Latn", "en-Latn"}


def test_run_eval_writes_results_with_fake_encoder(tiny_data, tmp_path):
    out = tmp_path / "out"
    seen: dict[str, object] = {}

    def factory(model, **kwargs):
        seen.update(model=model, **kwargs)
        return hash_encoder()

    results = run_eval(
        "fake-model", "xquad-r", out, EvalOptions(candidate_text="sentence", max_length=64), encoder_factory=factory
    )
    assert seen["model"] == "fake-model" and seen["max_length"] == 64
    assert [r.task for r in results] == ["xquad-r"]
    saved = read_result(out / "xquad-r.json")
    assert saved.main_score.metric == "mul.map"
    assert saved.main_score.value == pytest.approx(results[0].main_score.value)
    assert saved.config["eval_options"]["candidate_text"] == "sentence"
    assert saved.config["model_argument"] == "fake-model"
    arrays = read_per_query(out / "xquad-r.json", saved)
    assert arrays["en-Latn/query_ids"].tolist() == ["q0", "q1", "q2", "q3"]


def test_run_eval_validates_tasks_before_loading_model(tmp_path):
    def factory(model, **kwargs):
        raise AssertionError("the model must not load for an invalid task list")

    with pytest.raises(UnknownNameError):
        run_eval("m", ["xquad-r", "bogus"], tmp_path, encoder_factory=factory)


def test_run_eval_keep_going_collects_failures(tiny_data, tmp_path):
    with pytest.raises(EvalFailedError) as info:
        run_eval(
            "m",
            ["mlqa-r", "xquad-r"],
            tmp_path,
            {"candidate_text": "sentence"},
            encoder=hash_encoder(),
            keep_going=True,
        )
    assert [name for name, _ in info.value.failures] == ["mlqa-r"]  # no MLQA-R files in the tiny root
    assert [r.task for r in info.value.results] == ["xquad-r"]
    with pytest.raises(Exception, match="mlqa-r data not found"):
        run_eval("m", ["mlqa-r", "xquad-r"], tmp_path, encoder=hash_encoder())


def test_cli_eval_prints_table_and_fails_non_zero(tiny_data, tmp_path, monkeypatch, capsys):
    from polyret import cli

    monkeypatch.setattr(run_module, "_default_factory", lambda model, **kwargs: hash_encoder())
    out = tmp_path / "cli-out"
    monkeypatch.setattr(
        "sys.argv",
        [
            "polyret",
            "eval",
            "--model",
            "fake",
            "--task",
            "xquad-r",
            "--output",
            str(out),
            "--candidate-text",
            "sentence",
            "--languages",
            "en,de",
        ],
    )
    cli.main()
    printed = capsys.readouterr().out
    assert "xquad-r" in printed and "mul.map" in printed
    assert read_result(out / "xquad-r.json").config["languages"] == ["de", "en"]

    monkeypatch.setattr(
        "sys.argv", ["polyret", "eval", "--model", "fake", "--task", "xquad-r,mlqa-r", "--output", str(out)]
    )
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "xquad-r" in captured.out and "mlqa-r" not in captured.out  # the table holds the finished tasks only
    assert "failed mlqa-r: mlqa-r data not found" in captured.err and "1 of 2 tasks failed (mlqa-r)" in captured.err

    monkeypatch.setattr("sys.argv", ["polyret", "eval", "--model", "fake", "--task", "nope"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    assert "unknown task 'nope'" in capsys.readouterr().err


def test_articles_option_reaches_lareqa_only():
    options = EvalOptions(articles=2, languages=["en"])
    assert options.task_kwargs("xquad-r")["articles"] == 2
    assert "articles" not in options.task_kwargs("udhr")
    assert options.task_kwargs("udhr")["languages"] == ["en"]
    assert EvalOptions(task_options={"udhr": {"articles": "even"}}).task_kwargs("udhr")["articles"] == "even"


def test_run_eval_keeps_the_per_query_file_the_task_names(tmp_path, monkeypatch):
    """A task given an output_dir returns what write_result returned: its per_query field names the arrays' file,
    and run_eval keeps it when it rewrites the JSON with the run-level config (no guessing from file times)."""
    from polyret.eval.results import MainScore, TaskResult, write_result

    def evaluate_fake(encoder, output_dir=None):
        result = TaskResult(task="udhr", main_score=MainScore(metric="xx2en.p@1", value=50.0))
        if output_dir is not None:
            result = write_result(output_dir, result, {"sw/xx2en.p@1": np.array([1.0, 0.0])})
        return result

    monkeypatch.setitem(TASKS, "udhr", dataclasses.replace(TASKS["udhr"], evaluate=evaluate_fake))
    run_eval("m", ["udhr"], tmp_path, encoder=hash_encoder())
    saved = read_result(tmp_path / "udhr.json")
    assert saved.per_query == "udhr.per_query.npz"
    assert read_per_query(tmp_path / "udhr.json", saved)["sw/xx2en.p@1"].tolist() == [1.0, 0.0]
    assert saved.config["model_argument"] == "m"


def test_results_of_an_older_schema_are_refused_with_the_fix(tmp_path: Path) -> None:
    from polyret.errors import DataError
    from polyret.io import write_json

    write_json(tmp_path / "tatoeba.json", {"schema_version": 1, "task": "tatoeba"})
    with pytest.raises(DataError, match=r"schema version 1.*re-run the evaluation"):
        read_result(tmp_path / "tatoeba.json")


def test_max_sentences_reaches_only_the_tasks_that_take_it() -> None:
    from polyret.eval.tasks import accepted_options, get_task

    options = EvalOptions(max_sentences=50)
    accepted, ignored = accepted_options(get_task("tatoeba"), options.task_kwargs("tatoeba"))
    assert accepted["max_sentences"] == 50 and "max_sentences" not in ignored
    accepted, ignored = accepted_options(get_task("xquad-r"), options.task_kwargs("xquad-r"))
    assert "max_sentences" not in accepted and "max_sentences" in ignored


def test_an_encoder_option_the_encoder_took_is_not_logged_as_ignored(tmp_path, monkeypatch, caplog):
    """``max_length`` configures the encoder (EvalOptions.encoder_kwargs) even for a task that does not take it;
    only what reached neither is "ignored"."""
    from polyret.eval.results import MainScore, TaskResult

    def evaluate_without_max_length(encoder, *, languages=None, batch_size=32, output_dir=None):
        return TaskResult(task="udhr", main_score=MainScore(metric="p@1", value=0.0))

    monkeypatch.setitem(TASKS, "udhr", dataclasses.replace(TASKS["udhr"], evaluate=evaluate_without_max_length))
    options = EvalOptions(max_length=64, candidate_text="sentence")
    with caplog.at_level("INFO", logger="polyret.eval.tasks"):
        run_eval("fake-model", "udhr", tmp_path / "out", options, encoder_factory=lambda model, **kw: hash_encoder())
    assert "udhr: ignoring options it does not take: candidate_text" in caplog.messages
    caplog.clear()
    with caplog.at_level("INFO", logger="polyret.eval.tasks"):
        run_task("udhr", hash_encoder(), max_length=64)  # given an encoder as it is: max_length reached nothing
    assert "udhr: ignoring options it does not take: max_length" in caplog.messages
