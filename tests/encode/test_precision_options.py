"""``precision`` / ``backend`` from the edges: the CLI flags, eval results, train and study configs."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.cli import encode_args, run_polyret
from polyret.eval.run import EvalOptions, run_eval
from polyret.study.config import expand_runs, parse_study_config
from polyret.train.methods import load_train_config


def test_encode_precision_flags(tmp_path, tiny_model_dir, polyret_home, monkeypatch, capsys):
    source = tmp_path / "in.txt"
    source.write_text("the cat sat\nкошка спит\n", encoding="utf-8")
    common = [*encode_args(tiny_model_dir, source), "--no-cache"]
    code, err = run_polyret(monkeypatch, capsys, *common, "--output", str(tmp_path / "a.npy"), "--precision", "int8")
    assert code == 2 and "int8 needs --backend onnx" in err and "Traceback" not in err
    code, err = run_polyret(monkeypatch, capsys, *common, "--output", str(tmp_path / "a.npy"), "--backend", "jax")
    assert code == 2 and "backend 'jax'" in err
    code, _ = run_polyret(monkeypatch, capsys, *common, "--output", str(tmp_path / "fp32.npy"), "--precision", "fp32")
    assert code == 0
    code, _ = run_polyret(monkeypatch, capsys, *common, "--output", str(tmp_path / "bf16.npy"), "--precision", "bf16")
    assert code == 0
    fp32, bf16 = np.load(tmp_path / "fp32.npy"), np.load(tmp_path / "bf16.npy")
    assert fp32.dtype == bf16.dtype == np.float32 and not np.array_equal(fp32, bf16)


def test_eval_results_record_precision_and_backend(tmp_path, tiny_model_dir, polyret_home, shared_data):
    from polyret.eval.results import read_result

    tatoeba = {"tatoeba": {"max_sentences": 5, "languages": ["de", "sw"]}}
    run_eval(str(tiny_model_dir), ["tatoeba"], tmp_path, EvalOptions(precision="bf16", task_options=tatoeba))
    result = read_result(tmp_path / "tatoeba.json")
    assert result.model["precision"] == "bf16" and result.model["backend"] == "torch"
    assert result.config["eval_options"]["precision"] == "bf16"


def test_train_configs_take_precision():
    config = load_train_config(None, method="hybrid", overrides={"model": "m", "data": ["mlqa-r"]})
    assert config.precision == "auto"  # the default: bf16 where the hardware has it
    config = load_train_config(None, method="hybrid", overrides={"model": "m", "data": ["mlqa-r"], "precision": "fp32"})
    assert config.precision == "fp32"
    from polyret.errors import ConfigError

    with pytest.raises(ConfigError, match="precision"):
        load_train_config(None, method="hybrid", overrides={"model": "m", "data": ["mlqa-r"], "precision": "int8"})
    from polyret.train.criss.config import load_criss_config
    from polyret.train.tli_config import parse_tli_config

    corpora = {"corpora": {"de": "de.txt", "en": "en.txt"}}
    criss = load_criss_config({**corpora, "precision": "fp32", "train": {"precision": "bf16"}})
    assert (criss.precision, criss.train.precision) == ("fp32", "bf16")
    assert load_criss_config(corpora).train.precision is None  # follows the run's precision
    assert parse_tli_config({"precision": "bf16"}).precision == "bf16"


STUDY = {
    "name": "demo",
    "backbones": {"e5-small": "multilingual-e5-small"},
    "methods": ["zero-shot", "hybrid", {"method": "tli", "settings": {"language": "sw"}}],
    "train": {"data": ["mlqa-r"], "max_steps": 2},
    "eval": {"tasks": {"tatoeba": {"max_sentences": 5}, "udhr": {"precision": "fp32"}}},
}


def test_study_precision_reaches_every_run_and_its_fingerprints():
    unset = {run.name: run for run in expand_runs(parse_study_config(STUDY))}
    chosen = {run.name: run for run in expand_runs(parse_study_config({**STUDY, "precision": "bf16"}))}
    hybrid, tli = chosen["e5-small__hybrid-a0.5__s0"], chosen["e5-small__tli__s0"]
    assert hybrid.train["precision"] == tli.train["precision"] == "bf16"
    assert "precision" not in unset["e5-small__hybrid-a0.5__s0"].train  # unset: fingerprints as before
    zero_shot = chosen["e5-small__zero-shot"]
    assert zero_shot.tasks["tatoeba"]["precision"] == "bf16"
    assert zero_shot.tasks["udhr"]["precision"] == "fp32"  # a task's own setting wins
    assert hybrid.train_fingerprint != unset["e5-small__hybrid-a0.5__s0"].train_fingerprint
    assert zero_shot.eval_fingerprints["tatoeba"] != unset["e5-small__zero-shot"].eval_fingerprints["tatoeba"]
    assert zero_shot.eval_fingerprints["udhr"] == unset["e5-small__zero-shot"].eval_fingerprints["udhr"]


def test_model_card_says_how_results_were_encoded():
    from polyret.eval.model_card import results_section
    from polyret.eval.results import MainScore, TaskResult

    result = TaskResult(
        task="tatoeba",
        main_score=MainScore(metric="xx2en.accuracy", value=50.0),
        model={"precision": "int8", "backend": {"name": "onnx", "quantization": {"weights": "QInt8"}}},
    )
    assert "tatoeba encoded in int8 on the onnx backend" in results_section([result])


def test_study_precision_override_reaches_the_validated_runs(tmp_path):
    """`polyret compare --precision` replaces the file's before the runs are expanded (they are cached at load)."""
    import yaml

    from polyret.errors import ConfigError
    from polyret.study.config import load_study_config

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**STUDY, "precision": "fp32"}), encoding="utf-8")
    runs = {run.name: run for run in expand_runs(load_study_config(path, "bf16"))}
    hybrid = runs["e5-small__hybrid-a0.5__s0"]
    assert hybrid.train["precision"] == hybrid.config.precision == "bf16"
    assert runs["e5-small__zero-shot"].tasks["tatoeba"]["precision"] == "bf16"
    with pytest.raises(ConfigError, match="int8"):
        load_study_config(path, "int8")
