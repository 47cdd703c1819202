"""A new task and a new method need one module and one registry entry each: here both live in this test module.

The toy method "trains" by writing a model folder that says which words it has learnt; the toy task retrieves each
word's translation among the candidates. Both are registered from here alone, then a study runs them through the
study runner's default trainer (the method registry's dispatch) and an evaluator on `run_eval` (the task registry),
and the report reads their metadata (headline metric, the test against zero-shot).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import Field

from helpers.lookup_encoder import LookupEncoder
from polyret.errors import ConfigError
from polyret.eval.bitext import language_aggregates
from polyret.eval.options import TaskOptions
from polyret.eval.results import MainScore, TaskResult, read_result, write_result
from polyret.eval.run import run_eval
from polyret.eval.tasks import ItemRule, TaskMetadata, register_task, unregister_task
from polyret.report.render import write_report
from polyret.study.runner import run_study, split_eval_options
from polyret.train.methods import Method, register_method, unregister_method
from polyret.validation import StrictModel

WORDS = {"sw": ["paka", "mbwa", "maji", "jua"], "de": ["Katze", "Hund", "Wasser", "Sonne"]}
ENGLISH = ["cat", "dog", "water", "sun"]


# ------------------------------------------------------------------------------------------------ the toy task
class ToyOptions(TaskOptions):
    words: int = Field(4, ge=2, le=4)


def evaluate_toy(
    encoder,
    languages: Sequence[str] | None = None,
    words: int = 4,
    output_dir: str | Path | None = None,
    batch_size: int = 32,
    show_progress: bool = True,
) -> TaskResult:
    """xx→en word retrieval: top-1 accuracy (x100) per language."""
    per_language, per_query = {}, {}
    targets = encoder.encode(ENGLISH[:words], prefix=encoder.query_prefix)
    for lang in languages or list(WORDS):
        queries = encoder.encode(WORDS[lang][:words], prefix=encoder.query_prefix)
        hits = (np.argmax(queries @ targets.T, axis=1) == np.arange(words)).astype(np.float64)
        per_language[lang] = {"toy.accuracy": 100 * float(hits.mean()), "n": float(words)}
        per_query[f"{lang}/toy.accuracy"] = hits
        per_query[f"{lang}/query_ids"] = np.arange(words)
    aggregates = language_aggregates(per_language, ("toy.accuracy",))
    result = TaskResult(
        task="toy",
        main_score=MainScore(metric="toy.accuracy", value=aggregates["all"]["toy.accuracy"]),
        languages=per_language,
        aggregates=aggregates,
        model=encoder.describe(),
        config={"words": words, "languages": list(per_language)},
    )
    return write_result(output_dir, result, per_query) if output_dir is not None else result


TOY_TASK = TaskMetadata(
    "toy",
    "Toy words",
    "word translation retrieval among four words",
    evaluate_toy,
    "toy.accuracy",
    headline=("toy.accuracy",),
    items=ItemRule("a word of one language", False, False),
    options=ToyOptions,
)


# ------------------------------------------------------------------------------------------------ the toy method
class ToyConfig(StrictModel):
    method: Literal["toy"] = "toy"
    model: str
    seed: int = 0
    learn: list[str] = Field(default_factory=lambda: ["sw"])


def run_toy(config: ToyConfig, run_dir: Path, resume: bool) -> Path:
    model = run_dir / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model / "toy.json").write_text(json.dumps({"base": config.model, "learnt": config.learn}), encoding="utf-8")
    return model


TOY_METHOD = Method(
    "toy", "learns the toy words of some languages", ToyConfig, run_toy, trains_on="the toy words themselves"
)


def toy_encoder(model: str) -> LookupEncoder:
    """Words of the languages a toy model has learnt get their English word's vector; the rest are random."""
    marker = Path(model) / "toy.json"
    learnt = json.loads(marker.read_text(encoding="utf-8"))["learnt"] if marker.is_file() else []
    vectors = {f"query: {word}": np.eye(8)[i] for i, word in enumerate(ENGLISH)}
    for lang in learnt:
        vectors.update({f"query: {word}": np.eye(8)[i] for i, word in enumerate(WORDS[lang])})
    return LookupEncoder(vectors, prefixed=True)


def toy_evaluator(model: str, tasks: list[str], output_dir: Path, options: dict) -> list[TaskResult]:
    """The runner's evaluator shape on the real `run_eval` (task registry, result files), with the toy encoder."""
    return run_eval(model, tasks, output_dir, split_eval_options(tasks, options), encoder=toy_encoder(model))


@pytest.fixture
def toys():
    register_task(TOY_TASK)
    register_method(TOY_METHOD)
    yield
    unregister_task("toy")
    unregister_method("toy")


STUDY = """\
name: toys
backbones:
  base: {model}
methods: [zero-shot, {{method: toy, settings: {{learn: [sw, de]}}}}]
seeds: [0, 1]
eval:
  tasks:
    toy: {{words: 4}}
reference: zero-shot
"""


def test_a_toy_task_and_method_run_through_the_study_and_the_report(toys, tmp_path: Path):
    config = tmp_path / "study.yaml"
    config.write_text(STUDY.format(model=tmp_path / "base"), encoding="utf-8")
    status = run_study(config, tmp_path / "study", evaluator=toy_evaluator, show_progress=False)
    assert status.ok, [(run.name, run.error) for run in status.failed]
    trained = read_result(tmp_path / "study" / "runs" / "base__toy__s0" / "results" / "toy.json")
    assert trained.main_score.value == 100.0 and trained.per_query == "toy.per_query.npz"
    marker = tmp_path / "study" / "runs" / "base__toy__s1" / "train" / "model" / "toy.json"
    assert json.loads(marker.read_text(encoding="utf-8"))["learnt"] == ["sw", "de"]  # the typed config reached it
    report = write_report(tmp_path / "study", n_resamples=200, figures=False).markdown.read_text(encoding="utf-8")
    assert "### toy" in report and "| base | toy | 100.0 ± 0.0 (n=2) |" in report
    assert "| toy | base / toy | base / zero-shot | toy.accuracy | 8 |" in report  # tested against zero-shot


@pytest.mark.parametrize(
    ("task_options", "method_settings", "message"),
    [
        ("{words: 9}", "{}", r"study\.yaml: eval\.tasks\.toy: words: Input should be less than or equal to 4"),
        ("{word: 4}", "{}", r"study\.yaml: eval\.tasks\.toy: unknown option 'word'"),
        ("{}", "{learn: sw}", r"study\.yaml: run base__toy__s0: learn: Input should be a valid list"),
        ("{}", "{lern: [sw]}", r"study\.yaml: run base__toy__s0: lern: Extra inputs are not permitted"),
    ],
)
def test_toy_options_and_settings_are_validated_before_any_run(toys, tmp_path, task_options, method_settings, message):
    text = STUDY.replace("{{words: 4}}", task_options.replace("{", "{{").replace("}", "}}"))
    text = text.replace("{{learn: [sw, de]}}", method_settings.replace("{", "{{").replace("}", "}}"))
    config = tmp_path / "study.yaml"
    config.write_text(text.format(model=tmp_path / "base"), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        run_study(config, tmp_path / "study", evaluator=toy_evaluator, show_progress=False)
    assert not (tmp_path / "study").exists()


def test_unregistered_names_are_unknown_again(tmp_path: Path):
    config = tmp_path / "study.yaml"
    config.write_text(STUDY.format(model=tmp_path / "base"), encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown method 'toy'"):
        run_study(config, tmp_path / "study", evaluator=toy_evaluator, show_progress=False)
