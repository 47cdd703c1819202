"""MTEB-format results: shape without mteb, mteb's own TaskResult and task metadata with it, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.lookup_encoder import LookupEncoder
from helpers.tatoeba_files import write_tatoeba_pair
from polyret.data.languages import MIRACL_LANGS, TATOEBA_V1_CODES, language_key
from polyret.eval.mteb import MtebNames, to_mteb
from polyret.eval.results import MainScore, TaskResult
from polyret.eval.run import write_mteb_results
from polyret.eval.tasks import TASKS, get_spec
from polyret.eval.tatoeba import evaluate_tatoeba

MTEB_REASON = "mteb is not installed (pip install 'polyret[mteb]'); the shape test still runs"


@pytest.fixture
def tatoeba_mteb(tmp_path: Path) -> Path:
    """Tatoeba sw + ko on hand vectors: sw xx→en predicts [0, 2, 2, 0] (F1 1/3, accuracy 1/2), ko is exact."""
    vectors = {f"E{i}": [float(i == axis) for axis in range(4)] for i in range(4)}
    vectors.update({"x0": vectors["E0"], "x1": vectors["E2"], "x2": vectors["E2"], "x3": [1.0, 0.0, 0.0, 1.0]})
    write_tatoeba_pair(tmp_path, "swh", ["x0", "x1", "x2", "x3"], ["E0", "E1", "E2", "E3"])
    write_tatoeba_pair(tmp_path, "kor", ["E0", "E1"], ["E0", "E1"])
    result = evaluate_tatoeba(LookupEncoder(vectors, dim=4), ["sw", "ko"], root=tmp_path, show_progress=False)
    [path] = write_mteb_results([result], tmp_path / "out")
    return path


def test_tatoeba_mteb_shape(tatoeba_mteb: Path) -> None:
    assert tatoeba_mteb == tatoeba_mteb.parent.parent / "mteb" / "Tatoeba.json"
    payload = json.loads(tatoeba_mteb.read_text(encoding="utf-8"))
    assert payload["task_name"] == "Tatoeba" and payload["mteb_version"] is None
    assert set(payload) >= {"dataset_revision", "scores", "evaluation_time", "kg_co2_emissions", "date"}
    sw, ko = payload["scores"]["test"]
    assert (sw["hf_subset"], sw["languages"]) == ("swh-eng", ["swh-Latn", "eng-Latn"])
    assert (ko["hf_subset"], ko["languages"]) == ("kor-eng", ["kor-Hang", "eng-Latn"])  # MTEB's Tatoeba script
    assert sw["main_score"] == sw["f1"] == pytest.approx(1 / 3)  # 0-1 scale, MTEB's main score is F1
    assert (sw["accuracy"], sw["recall"], sw["precision"]) == pytest.approx((0.5, 0.5, 0.25))
    assert ko["main_score"] == 1.0
    assert payload["polyret"]["task"] == "tatoeba" and payload["polyret"]["metrics"]["f1"] == "xx2en.f1"


def test_tatoeba_mteb_loads_with_mtebs_task_result(tatoeba_mteb: Path) -> None:
    mteb = pytest.importorskip("mteb", reason=MTEB_REASON)
    loaded = mteb.TaskResult.from_disk(tatoeba_mteb)
    assert loaded.task_name == "Tatoeba" and sorted(loaded.hf_subsets) == ["kor-eng", "swh-eng"]
    assert loaded.get_score() == pytest.approx((1 / 3 + 1.0) / 2)
    assert loaded.get_score(languages=["swh"]) == pytest.approx(1 / 3)


def synthetic(task: str, keys: list[str], metrics: dict[str, float]) -> TaskResult:
    return TaskResult(
        task=task, main_score=MainScore(metric="x", value=0.0), languages={key: dict(metrics) for key in keys}
    )


@pytest.mark.parametrize(
    ("task", "codes", "values"),
    [
        ("tatoeba", TATOEBA_V1_CODES, {"xx2en.f1": 50.0, "xx2en.accuracy": 60.0}),  # all 112 LASER pairs
        ("miracl", MIRACL_LANGS, {"ndcg@10": 40.0, "r@100": 80.0}),
    ],
)
def test_subsets_and_languages_are_mtebs_own(task: str, codes: tuple[str, ...], values: dict[str, float]) -> None:
    """Every subset and language-script name polyret writes is the one MTEB's task declares."""
    mteb = pytest.importorskip("mteb", reason=MTEB_REASON)
    names = get_spec(task).mteb
    assert names is not None
    declared = mteb.get_task(names.task_name).metadata
    payload = to_mteb(synthetic(task, [language_key(code) for code in codes], values), names)
    [(split, subsets)] = payload["scores"].items()
    assert split in declared.eval_splits and names.main_score == declared.main_score
    mapping = declared.hf_subsets_to_langscripts
    assert {s["hf_subset"]: s["languages"] for s in subsets} == {
        s["hf_subset"]: mapping[s["hf_subset"]] for s in subsets
    }
    assert len(subsets) == len(codes)


def test_every_task_declares_mteb_names_and_polyret_names_are_prefixed() -> None:
    own = {"Tatoeba", "MIRACLRetrieval"}  # MTEB scores these tasks the way polyret does
    for spec in TASKS.values():
        assert spec.mteb is not None, spec.name
        assert spec.mteb.task_name in own or spec.mteb.task_name.startswith("polyret-"), spec.name
    with pytest.raises(ValueError, match="main score"):
        MtebNames("X", "f1", {"accuracy": "xx2en.accuracy"}, subset="{code}", languages=("{iso3}-{script}",))


def test_udhr_versions_become_subsets_named_by_their_keys() -> None:
    names = get_spec("udhr").mteb
    assert names is not None
    result = synthetic("udhr", ["sw-Latn", "sw-Latn-x-062", "zh-Hant"], {"xx2en.p@1": 90.0, "en2xx.p@1": 80.0})
    subsets = to_mteb(result, names)["scores"]["test"]
    assert [(s["hf_subset"], s["languages"][0]) for s in subsets] == [
        ("sw-Latn", "swa-Latn"),
        ("sw-Latn-x-062", "swa-Latn"),
        ("zh-Hant", "zho-Hant"),
    ]
    assert subsets[0]["main_score"] == pytest.approx(0.9) and subsets[0]["en2xx_precision_at_1"] == pytest.approx(0.8)


@pytest.mark.integration
def test_cli_writes_mteb_tatoeba_for_the_real_model(shared_data: Path, tmp_path: Path, e5_model_dir: Path) -> None:
    """The issue's done-when command: eval --task tatoeba --languages sw --max-sentences 50 --format mteb."""
    from typer.testing import CliRunner

    from polyret.cli import app

    out = tmp_path / "out"
    argv = ["eval", "-m", "multilingual-e5-small", "-t", "tatoeba", "--languages", "sw", "--max-sentences", "50"]
    outcome = CliRunner().invoke(app, [*argv, "--format", "mteb", "--output", str(out)])
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads((out / "mteb" / "Tatoeba.json").read_text(encoding="utf-8"))
    [swahili] = payload["scores"]["test"]
    assert payload["task_name"] == "Tatoeba" and swahili["hf_subset"] == "swh-eng"
    assert 0 <= swahili["main_score"] <= 1 and swahili["main_score"] == swahili["f1"]
    polyret_result = json.loads((out / "tatoeba.json").read_text(encoding="utf-8"))
    assert polyret_result["languages"]["sw-Latn"]["n"] == 50 and polyret_result["config"]["max_sentences"] == 50
