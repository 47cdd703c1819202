"""Contrastive training on a tiny model: run directory, losses, config errors, kill-and-resume, 2-process DDP."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from polyret.data import pairs as pairs_io
from polyret.errors import ConfigError, PolyretError
from polyret.train.config import ContrastiveConfig, parse_contrastive_config
from polyret.train.contrastive import PaperEq1Loss, build_loss, train_contrastive, train_on_pairs
from polyret.train.criss.config import CrissConfig
from polyret.train.methods import load_train_config

HERE = Path(__file__).parent
WORKER = HERE / "_train_worker.py"
LANGS = ("de", "en", "sw")


def write_items(path: Path, n: int = 40, langs: tuple[str, ...] = LANGS) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            entries = {
                lang: {"query": f"question {lang} {i}", "passage": f"answer {lang} number {i}"} for lang in langs
            }
            handle.write(json.dumps({"id": f"i{i}", "langs": entries}) + "\n")
    return path


def no_dropout_copy(model_dir: Path, target: Path) -> Path:
    """The tiny model with dropout off, so runs are comparable across process layouts."""
    shutil.copytree(model_dir, target)
    config = json.loads((target / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (target / "config.json").write_text(json.dumps(config))
    return target


def base_config(model: Path, data: Path, **extra) -> dict:
    config = {
        "method": "hybrid",
        "model": {"name": str(model), "query_prefix": "query: ", "passage_prefix": "passage: "},
        "data": [{"format": "jsonl", "path": str(data)}],
        "batch_size": 8,
        "max_steps": 6,
        "seed": 3,
        "validation": {"fraction": 0.0},
        "logging_steps": 1,
        "save_steps": 2,
        "optim": {"lr": 1e-3},
        # fp32 whatever the CPU: tests compare weights across runs and process layouts at fp32 tolerances
        "precision": "fp32",
    }
    config.update(extra)
    return config


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


pytestmark = pytest.mark.usefixtures("single_torch_thread")


# ----------------------------------------------------------------------------------------------- config
def test_config_defaults_follow_protocols():
    config = parse_contrastive_config({"method": "hybrid", "model": "multilingual-e5-small", "data": ["mlqa-r"]})
    assert config.alpha == 0.5 and config.batch_size == 100
    assert config.loss.temperature == 0.05 and config.loss.denominator == "in_batch" and not config.loss.symmetric
    assert config.optim.lr == 3e-5 and config.optim.weight_decay == 0.01 and config.optim.warmup_ratio == 0.1
    assert config.validation.patience == 3
    assert config.model.max_query_length == 64 and config.model.max_passage_length == 256
    assert config.data[0].format == "lareqa" and config.data[0].dataset == "mlqa-r"


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"loss": {"temperature": 0}}, "loss.temperature"),
        ({"loss": {"denominator": "paper_eq1"}}, "loss"),
        ({"batching": {"xy_pairs": "sometimes"}}, "batching.xy_pairs"),
        ({"languages": ["en", "xx-nope"]}, "languages"),
        ({"data": [{"format": "tsv", "files": {"en": "a.tsv"}, "pairs": "p.tsv"}]}, "data.0"),
        ({"optimizer": {}}, "optimizer"),
    ],
)
def test_config_errors_name_the_key(tmp_path, payload, key):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"method": "hybrid", "model": "m", "data": ["mlqa-r"], **payload}))
    with pytest.raises(ConfigError) as err:
        load_train_config(path)
    assert str(err.value).startswith(f"{path}: {key}")
    assert "\n" not in str(err.value)


def test_method_dispatch(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": "m", "data": ["mlqa-r"]}))
    with pytest.raises(ConfigError, match="method"):
        load_train_config(path)
    config = load_train_config(path, method="xy")
    assert isinstance(config, ContrastiveConfig) and config.method == "xy"
    # every method's config is validated at the edge, and its errors name the file (not `<criss config>`)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: data: Input should be 'fresh' or 'cumulative'"):
        load_train_config(path, method="criss")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: data: Extra inputs are not permitted"):
        load_train_config(path, method="tli")
    criss_path = tmp_path / "criss.yaml"
    criss_path.write_text(yaml.safe_dump({"method": "criss", "model": "m", "tatoeba": {"languages": ["de"]}}))
    criss = load_train_config(criss_path, overrides={"seed": 3})
    assert isinstance(criss, CrissConfig) and criss.method == "criss" and criss.seed == 3
    with pytest.raises(ConfigError, match="unknown method"):
        load_train_config(path, method="nope")


def test_cli_train_reports_config_errors_on_one_line(tmp_path, monkeypatch, capsys):
    from polyret import cli

    path = tmp_path / "bad.yaml"
    path.write_text("method: hybrid\nmodel: m\ndata: [mlqa-r]\nbatch_size: one\n")
    monkeypatch.setattr(sys, "argv", ["polyret", "train", str(path)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "batch_size" in err and str(path.name) in err


def test_cli_trains_on_a_local_hf_dataset_with_sentence_transformers_columns(tmp_path, tiny_model_dir, monkeypatch):
    """An HF dataset saved with save_to_disk, columns anchor/positive: `polyret train` maps them and trains."""
    from datasets import Dataset

    from polyret import cli

    monkeypatch.setenv("POLYRET_HOME", str(tmp_path / "home"))
    words = ["cat", "dog", "tree", "river", "stone", "bird", "house", "road", "rain", "sun", "moon", "fire"]
    Dataset.from_dict(
        {"anchor": [f"what is a {w}" for w in words], "positive": [f"a {w} is a thing called {w}" for w in words]}
    ).save_to_disk(str(tmp_path / "st-pairs"))
    config = base_config(tiny_model_dir, tmp_path / "unused.jsonl", method="mono", max_steps=2, save_steps=100)
    config["data"] = [{"format": "hf", "path": str(tmp_path / "st-pairs"), "columns": {"lang": "en"}}]
    path = tmp_path / "st.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setattr(sys, "argv", ["polyret", "train", str(path), "--run-dir", str(tmp_path / "run")])
    cli.main()  # returns normally on success (exit status 0)
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    batches = read_jsonl(tmp_path / "run" / "batches.rank0.jsonl")
    assert (
        len(batches) == 2 and {b["dataset"] for b in batches} == {"st-pairs"} and {b["lang"] for b in batches} == {"en"}
    )


def test_hf_source_config_validates_its_layout():
    from polyret.train.config import HfSource

    source = HfSource(path="x", columns={"negative": ["n1", "n2"], "lang_column": "language", "id": "qid"})
    mapping = source.layout()
    assert (mapping.negatives, mapping.lang_column, mapping.id_column) == (("n1", "n2"), "language", "qid")
    assert HfSource(path="x", parallel={"lang": "sw"}).layout().lang == "sw"
    assert HfSource(path="x").layout() is None
    with pytest.raises(ValueError, match="not both"):
        HfSource(path="x", columns={"lang": "sw"}, parallel={"lang": "sw"})
    with pytest.raises(ValueError, match="either lang"):
        HfSource(path="x", columns={"anchor": "q"})


# ----------------------------------------------------------------------------------------------- losses
def test_loss_choice(tiny_model_dir):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    plain = build_loss(model, parse_contrastive_config({"model": "m"}), world_size=1)
    assert isinstance(plain, MultipleNegativesRankingLoss) and plain.scale == pytest.approx(20.0)
    assert plain.directions == ("query_to_doc",) and not plain.gather_across_devices
    symmetric = build_loss(model, parse_contrastive_config({"model": "m", "loss": {"symmetric": True}}), 2)
    assert symmetric.directions == ("query_to_doc", "doc_to_query") and symmetric.gather_across_devices
    cached = build_loss(model, parse_contrastive_config({"model": "m", "loss": {"cached": True}}), 1)
    assert isinstance(cached, CachedMultipleNegativesRankingLoss)
    eq1 = build_loss(
        model, parse_contrastive_config({"model": "m", "loss": {"denominator": "paper_eq1", "hard_negatives": 1}}), 1
    )
    assert isinstance(eq1, PaperEq1Loss)


def test_paper_eq1_matches_hand_computation(monkeypatch):
    import polyret.train.contrastive as contrastive

    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    n = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    monkeypatch.setattr(contrastive, "embed_columns", lambda model, features: [q, p, n])
    loss = PaperEq1Loss(model=None)([{}, {}, {}], None)
    # by hand: cos(q0,p0)=0.6, cos(q0,n0)=1, cos(q0,n1)=-1; cos(q1,p1)=1, cos(q1,n*)=0
    e = torch.e
    expected = -(
        torch.log(torch.tensor(e**0.6 / (e**0.6 + e**1 + e**-1))) + torch.log(torch.tensor(e**1 / (e**1 + 1 + 1)))
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


# ----------------------------------------------------------------------------------------------- training
@pytest.mark.slow
def test_tiny_run_writes_a_complete_run_dir(tmp_path, tiny_model_dir):
    data = write_items(tmp_path / "items.jsonl", n=60)
    config = base_config(
        tiny_model_dir, data, max_steps=4, validation={"fraction": 0.2, "batch_size": 4, "batches": 2, "eval_steps": 2}
    )
    run = tmp_path / "run"
    model_dir = train_contrastive(config, run)
    assert model_dir == run / "model" and (model_dir / "modules.json").exists()
    assert {p.name for p in run.iterdir()} >= {
        "config.yaml",
        "run.json",
        "train_log.jsonl",
        "batches.rank0.jsonl",
        "checkpoints",
        "model",
    }
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["global_step"] == 4 and info["seed"] == 3
    assert info["query_prefix"] == "query: " and info["versions"]["torch"]
    assert info["datasets"] == {"items": 48} and info["validation"] == {"items:held-out": 12}
    assert info["best_checkpoint"] is not None  # early stopping keeps the best validation checkpoint
    log = read_jsonl(run / "train_log.jsonl")
    assert any("eval_loss" in line for line in log) and any("loss" in line for line in log)
    batches = read_jsonl(run / "batches.rank0.jsonl")
    assert [b["step"] for b in batches] == [0, 1, 2, 3]
    assert all(b["kind"] in ("mono", "xy") and b["n"] == 8 for b in batches)
    from sentence_transformers import SentenceTransformer

    trained = SentenceTransformer(str(model_dir), device="cpu")
    assert trained.prompts["query"] == "query: "
    with pytest.raises(PolyretError, match="already holds a run"):
        train_contrastive(config, run)
    with pytest.raises(ConfigError, match="max_steps"):
        train_contrastive({**config, "max_steps": 5}, run, resume=True)
    assert train_contrastive(config, run, resume=True) == model_dir  # finished: returns at once


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path of bf16 training")
def test_bf16_training_runs_on_a_cpu(tmp_path, tiny_model_dir):
    """What ``precision: auto`` does on CPUs with AVX512-BF16 (emulated, slowly, on others)."""
    data = write_items(tmp_path / "items.jsonl")
    before = weights(tiny_model_dir)
    model_dir = train_contrastive(base_config(tiny_model_dir, data, max_steps=2, precision="bf16"), tmp_path / "run")
    after = weights(model_dir)
    assert all(tensor.dtype == torch.float32 for tensor in after.values())  # autocast: the weights stay fp32
    assert any(not torch.equal(before[name], after[name]) for name in after)
    assert "precision: bf16" in (tmp_path / "run" / "config.yaml").read_text()


def test_train_on_bitext_pairs_is_xy_with_symmetric_prefixes(tmp_path, tiny_model_dir):
    pairs = [(f"sentence {i}", f"satz {i}") for i in range(24)]
    model_dir = train_on_pairs(
        tiny_model_dir,
        pairs,
        {"batch_size": 4, "max_steps": 2, "validation": {"fraction": 0.0}, "model": {"query_prefix": "query: "}},
        tmp_path / "run",
    )
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["method"] == "xy" and info["passage_prefix"] == "query: "
    batches = read_jsonl(tmp_path / "run" / "batches.rank0.jsonl")
    assert all(b["kind"] == "xy" for b in batches)
    assert (model_dir / "modules.json").exists()


def with_prompts(model_dir: Path, target: Path, prompts: dict[str, str]) -> Path:
    """A copy of the tiny model whose own prompts are ``prompts`` (as e5's are ``query: ``/``passage: ``)."""
    shutil.copytree(model_dir, target)
    settings = json.loads((target / "config_sentence_transformers.json").read_text())
    settings["prompts"] = prompts
    (target / "config_sentence_transformers.json").write_text(json.dumps(settings))
    return target


@pytest.mark.slow
def test_bitext_training_saves_the_base_models_prompts(tmp_path, tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    prompts = {"query": "query: ", "passage": "passage: "}
    base = with_prompts(tiny_model_dir, tmp_path / "base", prompts)
    pairs = [(f"sentence {i}", f"satz {i}") for i in range(24)]
    config = {"batch_size": 4, "max_steps": 2, "validation": {"fraction": 0.0}}
    model_dir = train_on_pairs(base, pairs, config, tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["passage_prefix"] == "query: "  # the training text is symmetric ...
    assert info["saved_prompts"] == prompts  # ... the saved model keeps the backbone's prompts
    saved = SentenceTransformer(str(model_dir), device="cpu").prompts
    assert {key: saved[key] for key in prompts} == prompts
    training_info = json.loads((model_dir / "polyret_training.json").read_text())
    assert (training_info["query_prefix"], training_info["passage_prefix"]) == ("query: ", "passage: ")


@pytest.mark.slow
def test_kill_after_checkpoint_then_resume_matches_uninterrupted_run(tmp_path, tiny_model_dir):
    """40 items / 8 = 5 steps an epoch: the resumed run replays epoch 0's batches, then crosses into epoch 1."""
    data = write_items(tmp_path / "items.jsonl", n=40)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(base_config(tiny_model_dir, data)))
    config = load_train_config(config_path)
    straight = train_contrastive(config, tmp_path / "straight")

    crashed = tmp_path / "crashed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(config_path), str(crashed), "--kill-at-step", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (crashed / "model").exists()
    assert sorted(p.name for p in (crashed / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert [b["step"] for b in read_jsonl(crashed / "batches.rank0.jsonl")] == [0, 1, 2, 3, 4]

    resumed = train_contrastive(config, crashed, resume=True)
    expected, got = weights(straight), weights(resumed)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6, msg=name)
    # same sampler state: the resumed run trained on exactly the same batches, step by step
    assert read_jsonl(crashed / "batches.rank0.jsonl") == read_jsonl(tmp_path / "straight" / "batches.rank0.jsonl")
    assert json.loads((crashed / "run.json").read_text())["resumed_from"].endswith("checkpoint-4")


@pytest.mark.slow
def test_two_process_ddp_trains_one_global_batch(tmp_path, tiny_model_dir):
    """torchrun, 2 CPU processes (gloo): at every step both ranks train on the same batch kind, language and data
    set, on disjoint halves of the single-process global batch, and end with the single-process weights."""
    model = no_dropout_copy(tiny_model_dir, tmp_path / "model")
    data = write_items(tmp_path / "items.jsonl", n=48)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(base_config(model, data, max_steps=5, save_steps=100, seed=0)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "polyret.cli",
        "train",
        str(config_path),
        "--run-dir",
        str(tmp_path / "ddp"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    rank0 = read_jsonl(tmp_path / "ddp" / "batches.rank0.jsonl")
    rank1 = read_jsonl(tmp_path / "ddp" / "batches.rank1.jsonl")
    assert [b["step"] for b in rank0] == [b["step"] for b in rank1] == [0, 1, 2, 3, 4]
    kinds = set()
    for a, b in zip(rank0, rank1, strict=True):
        assert (a["rank"], b["rank"]) == (0, 1)
        assert (a["kind"], a["lang"], a["dataset"]) == (b["kind"], b["lang"], b["dataset"])
        assert a["n"] == b["n"] == 4
        assert not set(a["items"]) & set(b["items"])
        kinds.add(a["kind"])
    assert kinds == {"mono", "xy"}

    config = load_train_config(config_path)
    single = train_contrastive(config, tmp_path / "single")
    whole = read_jsonl(tmp_path / "single" / "batches.rank0.jsonl")
    for a, b, w in zip(rank0, rank1, whole, strict=True):
        assert a["items"] + b["items"] == w["items"] and a["pairs"] + b["pairs"] == w["pairs"]
    # gathered negatives + gradient averaging = single-process training on the global batch
    expected, got = weights(single), weights(tmp_path / "ddp" / "model")
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)


def _fake_checkpoint(folder: Path, *, state: bool = True, weights: bool = True) -> Path:
    folder.mkdir(parents=True)
    if state:
        (folder / "trainer_state.json").write_text("{}")
    if weights:
        (folder / "model.safetensors").write_bytes(b"w")
    return folder


def test_last_checkpoint_skips_and_moves_aside_incomplete_ones(tmp_path, caplog):
    from polyret.train.runs import last_checkpoint

    checkpoints = tmp_path / "checkpoints"
    assert last_checkpoint(checkpoints) is None
    _fake_checkpoint(checkpoints / "checkpoint-2")
    _fake_checkpoint(checkpoints / "checkpoint-10")  # numeric order, not name order
    _fake_checkpoint(checkpoints / "checkpoint-12", state=False)  # killed while saving: no trainer state yet
    _fake_checkpoint(checkpoints / "checkpoint-14", weights=False)
    (checkpoints / "checkpoint-16").mkdir()
    assert last_checkpoint(checkpoints, move_aside=False) == str(checkpoints / "checkpoint-10")
    assert (checkpoints / "checkpoint-12").is_dir()  # only looked at
    with caplog.at_level("WARNING", logger="polyret.train.runs"):
        assert last_checkpoint(checkpoints) == str(checkpoints / "checkpoint-10")
    assert sorted(p.name for p in checkpoints.iterdir() if p.name.startswith("checkpoint-")) == [
        "checkpoint-10",
        "checkpoint-2",
    ]
    assert len([p for p in checkpoints.iterdir() if p.name.startswith("incomplete-checkpoint-")]) == 3
    assert "checkpoint-12 is incomplete" in caplog.text and "moved aside to" in caplog.text


def test_resume_after_a_kill_while_saving_uses_the_last_complete_checkpoint(tmp_path, tiny_model_dir, caplog):
    """The Trainer writes checkpoint-N in place: a kill mid-save leaves it without trainer_state.json."""
    data = write_items(tmp_path / "items.jsonl", n=40)
    config = base_config(tiny_model_dir, data, max_steps=4)
    run = tmp_path / "run"
    train_contrastive(config, run)
    shutil.rmtree(run / "model")
    (run / "checkpoints" / "checkpoint-4" / "trainer_state.json").unlink()
    runs_info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**runs_info, "status": "running"}))
    with caplog.at_level("WARNING", logger="polyret.train.runs"):
        model_dir = train_contrastive(config, run, resume=True)
    assert (model_dir / "model.safetensors").is_file()
    info = json.loads((run / "run.json").read_text())
    assert info["resumed_from"].endswith("checkpoint-2") and info["global_step"] == 4
    assert "checkpoint-4 is incomplete" in caplog.text
    assert any(p.name.startswith("incomplete-checkpoint-4-") for p in (run / "checkpoints").iterdir())


def test_a_run_that_fails_before_its_first_step_does_not_block_its_rerun(tmp_path, tiny_model_dir):
    data = write_items(tmp_path / "items.jsonl", n=40)
    run = tmp_path / "run"
    with pytest.raises(PolyretError, match="not found"):
        train_contrastive(base_config(tmp_path / "no-such-model", data, max_steps=2), run)
    assert not (run / "config.yaml").exists()
    with pytest.raises(PolyretError, match="lower batch_size"):  # found while preparing the batches
        train_contrastive(base_config(tiny_model_dir, data, max_steps=2, batch_size=1000), run)
    assert not (run / "config.yaml").exists()
    model_dir = train_contrastive(base_config(tiny_model_dir, data, max_steps=2), run)  # no --resume needed
    assert (model_dir / "modules.json").is_file()


SHARED = {"languages": ["en"], "policy": "mono", "seed": 0, "fraction": 0.2, "batch_size": 4, "batches": 2}


def test_shared_validation_is_the_same_for_every_method(tmp_path):
    """PROTOCOLS §6.2: the same held-out English items and the same batches whatever the run's method and seed."""
    from polyret.train.contrastive import hold_out, load_sources, validation_plan

    data = write_items(tmp_path / "items.jsonl", n=30)
    plans = []
    for method, seed in (("mono", 0), ("xy", 1), ("hybrid", 2)):
        config = parse_contrastive_config(
            base_config(Path("unused"), data, method=method, seed=seed, validation={**SHARED, "eval_steps": 2})
        )
        train, validation = hold_out(load_sources(config.data), None, config)
        index, batches = validation_plan(validation, ("de", "en", "sw"), ("q: ", "p: "), config, 4, {})
        assert {item.id for item in train[0].items}.isdisjoint(item.id for item in validation[0].items)
        plans.append([index.texts(rows)[0] for rows in batches])
    assert plans[0] == plans[1] == plans[2]
    assert all(text.startswith("q: question en") for batch in plans[0] for text in batch)


def test_holdout_of_validates_on_other_data_and_keeps_the_training_pairs(tmp_path):
    from polyret.train.contrastive import hold_out

    data = write_items(tmp_path / "items.jsonl", n=30)
    config = parse_contrastive_config(
        base_config(Path("unused"), data, validation={**SHARED, "holdout_of": [{"format": "jsonl", "path": str(data)}]})
    )
    bitext = [pairs_io.items_from_bitext([("de", f"satz {i}", "en", f"sentence {i}") for i in range(10)])]
    train, validation = hold_out(bitext, None, config)
    assert train == bitext and len(validation[0]) == 6  # 20 % of the 30 QA items


@pytest.mark.slow
def test_xy_with_english_only_validation_records_the_kept_step(tmp_path, tiny_model_dir):
    data = write_items(tmp_path / "items.jsonl", n=40)
    config = base_config(
        tiny_model_dir, data, method="xy", max_steps=4, validation={**SHARED, "eval_steps": 2, "patience": 3}
    )
    model_dir = train_contrastive(config, tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["kept_step"] in (2, 4) and info["best_checkpoint"].endswith(f"checkpoint-{info['kept_step']}")
    assert json.loads((model_dir / "polyret_training.json").read_text())["kept_step"] == info["kept_step"]
