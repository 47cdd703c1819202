"""`polyret compare` end to end with the real trainer and evaluator, on the tiny model (shapes and plumbing only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from polyret.io import read_json

WORDS = {
    "en": ["cat", "dog", "house", "river", "tree", "bread", "water", "book", "road", "sun", "moon", "fish"],
    "de": ["Katze", "Hund", "Haus", "Fluss", "Baum", "Brot", "Wasser", "Buch", "Straße", "Sonne", "Mond", "Fisch"],
}


def write_items(path: Path) -> Path:
    lines = []
    for i in range(len(WORDS["en"])):
        langs = {
            lang: {
                "query": f"where is the {words[i]}?" if lang == "en" else f"wo ist {words[i]}?",
                "passage": f"the {words[i]} is here" if lang == "en" else f"{words[i]} ist hier",
            }
            for lang, words in WORDS.items()
        }
        lines.append(json.dumps({"id": f"item{i}", "langs": langs}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.integration
def test_compare_trains_evaluates_and_reports(tiny_model_dir: Path, shared_data: Path, tmp_path: Path):
    items = write_items(tmp_path / "items.jsonl")
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"""
name: tiny
backbones:
  tiny: {tiny_model_dir}
methods: [zero-shot, mono, {{method: hybrid, alpha: [0.5]}}]
seeds: [0]
train:
  data: [{{format: jsonl, path: {items}}}]
  languages: [en, de]
  batch_size: 4
  settings:
    model: {{max_query_length: 16, max_passage_length: 16}}
    save_steps: 1
selection: {{fixed_steps: 2}}
eval:
  tasks:
    tatoeba: {{languages: [sw, de], max_sentences: 8, max_length: 32}}
reference: zero-shot
""",
        encoding="utf-8",
    )
    study_dir = tmp_path / "study"
    from polyret.cli import app

    result = CliRunner().invoke(app, ["compare", str(config), "--study-dir", str(study_dir), "--no-progress"])
    assert result.exit_code == 0, result.output
    for name in ("tiny__zero-shot", "tiny__mono__s0", "tiny__hybrid-a0.5__s0"):
        run_dir = study_dir / "runs" / name
        assert (run_dir / "done.json").is_file(), (run_dir / "log.txt").read_text(encoding="utf-8")
        tatoeba = read_json(run_dir / "results" / "tatoeba.json")
        assert set(tatoeba["languages"]) == {"sw-Latn", "de-Latn"} and tatoeba["config"]["max_sentences"] == 8
        assert (run_dir / "results" / "tatoeba.per_query.npz").is_file()
    model_dir = Path(read_json(study_dir / "runs" / "tiny__mono__s0" / "train.done.json")["model_dir"])
    model_dir = model_dir if model_dir.is_absolute() else study_dir / "runs" / "tiny__mono__s0" / model_dir
    assert "## polyret evaluation" in (model_dir / "README.md").read_text(encoding="utf-8")  # model card
    assert not list((study_dir / "runs" / "tiny__mono__s0" / "train").rglob("checkpoint-*"))  # resume state gone
    report = (study_dir / "report.md").read_text(encoding="utf-8")
    assert "tiny / mono" in report and "Significance against zero-shot" in report
    assert report.split("\n## ", 2)[1].startswith("Claims")  # the report opens with the claims table
    claims = read_json(study_dir / "claims.json")
    assert [claim["id"] for claim in claims["claims"]] == ["C1", "C2", "C3", "C4", "C5"]
    c5 = [row for row in claims["rows"] if row["claim"] == "C5" and row["task"] == "tatoeba"]
    assert c5 and all(row["verdict_text"] == "single seed: not tested" for row in c5)  # one seed per arm
    # a second compare does nothing and says so
    again = CliRunner().invoke(
        app, ["compare", str(config), "--study-dir", str(study_dir), "--no-progress", "--no-report"]
    )
    assert again.exit_code == 0 and "0 run(s) done, 3 already done, 0 failed" in " ".join(again.output.split())
