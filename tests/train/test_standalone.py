"""Standalone `polyret train`: resume checkpoints removed at the end (unless --keep-checkpoints), a full model card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from polyret import cli
from polyret.eval.model_card import END, START, training_facts, write_model_card
from polyret.eval.results import MainScore, TaskResult

pytestmark = pytest.mark.usefixtures("single_torch_thread")


def _config(tmp_path: Path, model: Path) -> Path:
    items = tmp_path / "items.jsonl"
    with items.open("w", encoding="utf-8") as handle:
        for i in range(24):
            langs = {lang: {"query": f"question {lang} {i}", "passage": f"answer {lang} {i}"} for lang in ("de", "sw")}
            handle.write(json.dumps({"id": f"i{i}", "langs": langs}) + "\n")
    config = {
        "method": "hybrid",
        "model": {"name": str(model), "query_prefix": "query: ", "passage_prefix": "passage: "},
        "data": [{"format": "jsonl", "path": str(items)}],
        "batch_size": 4,
        "max_steps": 2,
        "save_steps": 1,
        "validation": {"fraction": 0.0},
        "precision": "fp32",  # the card below names it, whatever `auto` would pick on this CPU
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_train_removes_checkpoints_and_writes_a_full_card(tmp_path: Path, tiny_model_dir: Path):
    config = _config(tmp_path, tiny_model_dir)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli.app, ["train", str(config), "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    assert not list(run.rglob("checkpoint-*")) and not (run / "checkpoints").exists()
    card = (run / "model" / "README.md").read_text(encoding="utf-8")
    section = card[card.index(START) : card.index(END)]
    for row in (
        f"| base model | `{tiny_model_dir}` |",
        "| method | hybrid (α = 0.5) |",
        "| languages | de, sw |",
        "| training data | items (24 items) |",
        "| precision | fp32 |",
        "| steps | 2 of batch 4 |",
    ):
        assert row in section, row
    assert "| final training loss | " in section
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["language"] == ["de", "sw"] and "base_model" not in front  # a local folder is no Hub id
    assert "- **Language:** de, sw" in card and "**Language:** Unknown" not in card

    kept = tmp_path / "kept"
    result = CliRunner().invoke(cli.app, ["train", str(config), "--run-dir", str(kept), "--keep-checkpoints"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (kept / "checkpoints").iterdir()) == ["checkpoint-1", "checkpoint-2"]


def test_card_of_an_embedded_base_names_its_hub_model_and_keeps_results(tmp_path: Path):
    run, model = tmp_path / "run", tmp_path / "run" / "model"
    model.mkdir(parents=True)
    (run / "config.yaml").write_text("method: xy\nmodel: multilingual-e5-small\nprecision: bf16\nseed: 1\n")
    (run / "run.json").write_text(json.dumps({"global_step": 10, "languages": ["sw"], "best_eval_loss": 0.5}))
    (model / "README.md").write_text(
        "---\ntags:\n- x\n---\n# ST\n<!-- - **Base model:** [Unknown](https://huggingface.co/unknown) -->\n"
    )
    facts = training_facts(model)
    assert facts is not None and facts.upstream == "intfloat/multilingual-e5-small" and facts.alpha is None
    result = TaskResult(
        task="tatoeba",
        main_score=MainScore(metric="xx2en.accuracy", value=70.0),
        config={"languages": ["sw", "jv"], "eval_options": {"batch_size": 16}},
    )
    card = write_model_card(model, [result]).read_text(encoding="utf-8")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front == {"tags": ["x"], "base_model": "intfloat/multilingual-e5-small", "language": ["sw"]}
    assert "- **Base model:** intfloat/multilingual-e5-small" in card
    assert (
        "| base model | `multilingual-e5-small` (polyret's embedded copy of `intfloat/multilingual-e5-small`) |" in card
    )
    assert "| method | xy |" in card and "| precision | bf16 |" in card and "| best validation loss | 0.5000 |" in card
    assert "| tatoeba | xx2en.accuracy | 70.00 |" in card
    assert "- languages: sw, jv" in card and "- eval_options.batch_size: 16" in card  # options as key: value
    assert write_model_card(model, [result]).read_text(encoding="utf-8") == card  # rewriting changes nothing
