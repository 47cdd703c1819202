"""--task-option TASK.KEY=VALUE and --languages [TASK=]CODES: validated against the task registry, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from polyret import cli
from polyret.errors import PolyretError
from polyret.eval.overrides import parse_task_options, plan_tasks


def test_task_options_are_converted_by_the_tasks_options_model():
    options = parse_task_options(
        ["tatoeba.max_sentences=50", "xquad-r.settings=mul,cross", "udhr.articles=even", "udhr.languages=sw"],
        ["tatoeba", "xquad-r", "udhr"],
    )
    assert options == {
        "tatoeba": {"max_sentences": 50},
        "xquad-r": {"settings": ["mul", "cross"]},
        "udhr": {"articles": "even", "languages": ["sw"]},
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tatoeba.max_sentences", "--task-option tatoeba.max_sentences: expected TASK.KEY=VALUE"),
        ("max_sentences=5", "expected TASK.KEY=VALUE"),
        ("xquad.languages=ar", "--task-option xquad.languages=ar: unknown task 'xquad'; valid: "),
        ("udhr.languages=sw", "task 'udhr' is not among --task (tatoeba, xquad-r)"),
        ("tatoeba.settings=mul", "tatoeba has no option 'settings'; valid: batch_size, languages, max_sentences"),
        ("tatoeba.pooling=cls", "pooling is an encoder option, shared by every task: use --pooling"),
        ("tatoeba.max_sentences=many", "--task-option tatoeba.max_sentences=many: max_sentences: Input should be"),
        ("xquad-r.candidate_text=page", "candidate_text: Input should be 'sentence' or 'sentence+context'"),
    ],
)
def test_bad_task_options_are_one_line_naming_the_option(value: str, message: str):
    with pytest.raises(PolyretError) as error:
        parse_task_options([value], ["tatoeba", "xquad-r"])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_shared_language_list_reaches_each_task_as_the_languages_it_has():
    plan = plan_tasks(["tatoeba", "xquad-r", "mlqa-r"], languages=["jv,ar", "el"])
    assert plan.tasks == ["tatoeba", "xquad-r", "mlqa-r"]
    assert plan.options == {
        "tatoeba": {"languages": ["jv", "ar", "el"]},  # open language set: every code
        "xquad-r": {"languages": ["ar", "el"]},
        "mlqa-r": {"languages": ["ar"]},
    }
    plan = plan_tasks(["tatoeba", "xquad-r"], languages=["jv"])
    assert plan.tasks == ["tatoeba"] and "xquad-r" in plan.skipped and "jv" in plan.skipped["xquad-r"]
    with pytest.raises(PolyretError, match="no task has any of --languages jv"):
        plan_tasks(["xquad-r"], languages=["jv"])


def test_per_task_languages_win_over_the_shared_list_and_task_options_over_both():
    plan = plan_tasks(
        ["tatoeba", "xquad-r", "udhr"],
        task_options=["udhr.languages=yo"],
        languages=["jv", "tatoeba=jv,sw", "xquad-r=ar", "udhr=sw"],
    )
    assert plan.options == {
        "tatoeba": {"languages": ["jv", "sw"]},
        "xquad-r": {"languages": ["ar"]},
        "udhr": {"languages": ["yo"]},
    }
    with pytest.raises(PolyretError, match="--languages miracl=sw: task 'miracl' is not among --task"):
        plan_tasks(["tatoeba"], languages=["miracl=sw"])
    with pytest.raises(PolyretError, match="--languages tatoeba=: give comma-separated language codes"):
        plan_tasks(["tatoeba"], languages=["tatoeba="])


def test_cli_eval_skips_a_task_without_the_languages_and_passes_task_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    from polyret.eval import run as eval_run

    calls = []
    monkeypatch.setattr(
        eval_run, "run_eval", lambda model, names, out, options, keep_going: calls.append((names, options)) or []
    )
    args = ["eval", "-m", "tiny", "-t", "tatoeba,xquad-r", "--languages", "jv", "--output", str(tmp_path)]
    result = CliRunner().invoke(cli.app, [*args, "--task-option", "tatoeba.max_sentences=50"])
    assert result.exit_code == 0, result.output
    names, options = calls[0]
    assert names == ["tatoeba"] and options.task_options == {"tatoeba": {"max_sentences": 50, "languages": ["jv"]}}
    assert "skipped xquad-r: none of --languages jv is one of its languages" in result.output
    result = CliRunner().invoke(cli.app, [*args, "--task-option", "tatoeba.max_sentence=50"])
    assert "tatoeba has no option 'max_sentence'" in str(result.exception) and len(calls) == 1
