"""`polyret compare CONFIG --smoke`: every run of a study on tiny offline stand-ins, one line per run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from polyret.encode.tiny import tiny_family
from polyret.errors import ModelError
from polyret.io import read_yaml
from polyret.study.smoke import smoke_payload
from polyret.train.contrastive import check_training_plan
from polyret.train.methods import get_method

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_known_backbones_map_to_their_architecture_family(tmp_path: Path):
    assert tiny_family("FacebookAI/xlm-roberta-large") == "xlm-roberta"
    assert tiny_family("sentence-transformers/LaBSE") == "labse"
    assert tiny_family("facebook/mbart-large-cc25") == "mbart"
    assert tiny_family("facebook/mbart-large-50-one-to-many-mmt") == "mbart-50"
    assert tiny_family("google/mt5-large") == "mt5"
    assert tiny_family("facebook/nllb-200-distilled-1.3B") == "nllb"
    for model_type, family in [("mbart", "mbart"), ("mt5", "mt5"), ("m2m_100", "nllb")]:
        local = tmp_path / model_type
        local.mkdir()
        (local / "config.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
        assert tiny_family(str(local)) == family
    with pytest.raises(ModelError) as err:
        tiny_family("someone/unknown-model")
    assert "'someone/unknown-model'" in str(err.value) and "\n" not in str(err.value)


def test_the_smoke_study_is_the_study_made_tiny():
    payload = read_yaml(CONFIGS / "paper.yaml", "study config")
    smoke = smoke_payload(payload, {name: f"/tiny/{name}" for name in payload["backbones"]})
    assert smoke["smoke"] is True and smoke["seeds"] == [payload["seeds"][0]]
    assert smoke["backbones"]["mbart"] == {
        **payload["backbones"]["mbart"],
        "model": "/tiny/mbart",
        "published_as": "mbart",
    }
    assert smoke["selection"]["validation"]["eval_steps"] == 1 and smoke["train"]["max_steps"] == 2
    assert smoke["eval"]["tasks"]["tatoeba"]["max_sentences"] == 10
    assert smoke["methods"] == payload["methods"]  # every run of the study, nothing dropped


def _mined_arms() -> list[tuple[str, dict]]:
    """Every method entry of a shipped study that trains InfoNCE on mined pairs, with its settings."""
    arms = []
    for path in sorted(CONFIGS.glob("*.yaml")):
        for entry in read_yaml(path, "study config").get("methods") or []:
            if isinstance(entry, dict) and entry.get("method") == "criss-contrastive":
                arms.append((path.name, entry.get("settings") or {}))
    return arms


@pytest.mark.parametrize(("name", "settings"), _mined_arms(), ids=[name for name, _ in _mined_arms()])
def test_a_smoke_criss_contrastive_batch_fits_the_few_pairs_it_mines(name: str, settings: dict):
    """cpu-study's batch of 32 could not be filled from the 42 pairs mined out of a smoke run's 40 sentences."""
    smoke = get_method("criss-contrastive").smoke(settings)
    count = smoke["mining"]["min_count"]  # the floor of accepted pairs (a fifth of them may go to validation)
    pairs = [("de", f"satz {i}", "en", f"sentence {i}") for i in range(count - count // 5)]
    model = {**smoke["contrastive"].get("model", {}), "name": "unused: no model is loaded"}
    # the study's shared selection rule replaces the arm's own validation; only the training batches are checked
    config = {**smoke["contrastive"], "method": "xy", "model": model, "validation": {"fraction": 0.0}}
    assert check_training_plan(config, pairs).total_steps >= 1


def _smoke(config: Path, study_dir: Path):
    from polyret.cli import app

    return CliRunner().invoke(app, ["compare", str(config), "--smoke", "--study-dir", str(study_dir), "--no-report"])


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("name", ["quickstart.yaml", "paper.yaml"])
def test_every_shipped_study_passes_its_smoke_run(name: str, shared_data: Path, udhr_table: Path, tmp_path: Path):
    result = _smoke(CONFIGS / name, tmp_path / "smoke")
    lines = [line for line in result.output.splitlines() if line.endswith(": ok") or ": FAILED:" in line]
    assert result.exit_code == 0, result.output
    assert lines and all(line.endswith(": ok") for line in lines)


@pytest.mark.slow
@pytest.mark.integration
def test_a_broken_arm_is_named_in_one_line_and_fails_the_smoke_run(shared_data: Path, udhr_table: Path, tmp_path: Path):
    config = tmp_path / "broken.yaml"
    config.write_text(
        """
name: broken
backbones: {e5: multilingual-e5-small}
methods: [zero-shot, {method: hybrid, alpha: [0.5], settings: {batch_size: 100000}}]
train: {data: [{format: lareqa, dataset: mlqa-r, candidate_text: sentence}]}
eval: {tasks: {tatoeba: {languages: [sw]}}}
""",
        encoding="utf-8",
    )
    result = _smoke(config, tmp_path / "smoke")
    assert result.exit_code == 1
    assert "e5__zero-shot: ok" in result.output
    failed = [line for line in result.output.splitlines() if line.startswith("e5__hybrid-a0.5__s0: FAILED: ")]
    assert len(failed) == 1 and "batch" in failed[0]
