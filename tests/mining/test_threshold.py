"""`polyret mine --threshold auto`: BUCC's F1-tuned threshold on a Tatoeba dev bitext, recorded beside the TSV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers.lookup_encoder import LookupEncoder
from helpers.tatoeba_files import write_tatoeba_pair
from polyret.cli import app
from polyret.errors import ConfigError
from polyret.mining.margin import MiningOptions
from polyret.mining.threshold import DevSet, dev_bitext, mine_files_tuned, threshold_record, tune_threshold

N = 4  # parallel lines per dev language
DIM = 64


@pytest.fixture
def dev_root(tmp_path: Path) -> tuple[Path, dict[str, list[float]]]:
    """Afrikaans and Basque files of 3N lines: lines < N translate each other (near-identical vectors), the rest of
    each side is unrelated (random directions), so a good threshold keeps exactly the N pairs per language."""
    rng = np.random.default_rng(0)
    vectors: dict[str, list[float]] = {}
    for code in ("afr", "eus"):
        xx, en = [f"{code}-x{i}" for i in range(3 * N)], [f"{code}-e{i}" for i in range(3 * N)]
        for i in range(3 * N):
            base = rng.normal(size=DIM)
            vectors[xx[i]] = base.tolist()
            vectors[en[i]] = (base + 0.05 * rng.normal(size=DIM) if i < N else rng.normal(size=DIM)).tolist()
        write_tatoeba_pair(tmp_path, code, xx, en)
    return tmp_path, vectors


def test_dev_bitext_hides_pairs_among_unpaired_lines(dev_root) -> None:
    root, _ = dev_root
    bitext = dev_bitext("af", N, root)
    assert bitext.lang == "af-Latn" and len(bitext.src) == len(bitext.tgt) == 2 * N
    assert bitext.gold == {(f"afr-x{i}", f"afr-e{i}") for i in range(N)}
    assert bitext.tgt[N:] == [f"afr-e{i}" for i in range(2 * N, 3 * N)]  # English lines whose source is left out


def test_threshold_is_the_midpoint_below_the_f1_best_cut_off(dev_root) -> None:
    root, vectors = dev_root
    encoder = LookupEncoder(vectors, dim=DIM)
    options = MiningOptions(k=2, threshold=1.06, min_count=5)
    tuning = tune_threshold(encoder, options, DevSet(["af", "eu"], lines=N, root=root))
    assert tuning.dev_f1 == 100.0 and tuning.gold_pairs == 2 * N and tuning.languages == ("af-Latn", "eu-Latn")
    # by hand: the candidates of both languages, mined without threshold or floor; gold ones all score above the rest
    gold_scores, other_scores = [], []
    for lang in ("af", "eu"):
        bitext = dev_bitext(lang, N, root)
        src = np.array([vectors[t] for t in bitext.src], dtype=np.float32)
        tgt = np.array([vectors[t] for t in bitext.tgt], dtype=np.float32)
        pairs = MiningOptions(k=2, threshold=None).mine(src, tgt)
        for i, j, score in zip(pairs.src_index, pairs.tgt_index, pairs.score, strict=True):
            is_gold = (bitext.src[i], bitext.tgt[j]) in bitext.gold
            (gold_scores if is_gold else other_scores).append(score)
    assert len(gold_scores) == 2 * N and min(gold_scores) > max(other_scores)
    assert tuning.threshold == pytest.approx((min(gold_scores) + max(other_scores)) / 2)
    assert {prefix for prefix, _ in encoder.calls} == {encoder.query_prefix}


def test_mine_files_tuned_records_the_threshold_and_keeps_the_tsv(dev_root, tmp_path: Path) -> None:
    root, vectors = dev_root
    # the mined files: the Basque dev lines again, so the tuned threshold keeps exactly their N pairs
    bitext = dev_bitext("eu", N, root)
    src, tgt = tmp_path / "src.txt", tmp_path / "tgt.txt"
    src.write_text("\n".join(bitext.src) + "\n", encoding="utf-8")
    tgt.write_text("\n".join(bitext.tgt) + "\n", encoding="utf-8")
    out = tmp_path / "mined.tsv"
    summary, tuning = mine_files_tuned(
        LookupEncoder(vectors, dim=DIM), src, tgt, out, MiningOptions(k=2), DevSet(["af"], lines=N, root=root)
    )
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert {(row[1], row[2]) for row in rows} == bitext.gold and summary.pairs == N
    assert all(float(row[0]) > tuning.threshold for row in rows)
    record = json.loads(threshold_record(out).read_text(encoding="utf-8"))
    assert threshold_record(out).name == "mined.tsv.threshold.json"
    assert record["threshold"] == tuning.threshold and record["languages"] == ["af-Latn"] and record["pairs"] == N


def test_cli_threshold_auto_with_the_tiny_model(dev_root, tmp_path, tiny_model_dir, monkeypatch) -> None:
    root, _ = dev_root
    monkeypatch.setenv("POLYRET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("POLYRET_DATA_DIR", str(root))
    src, tgt = tmp_path / "a.txt", tmp_path / "b.txt"
    src.write_text("el gato duerme\nthe quick brown fox\n", encoding="utf-8")
    tgt.write_text("the cat sleeps\npaka analala\n", encoding="utf-8")
    out = tmp_path / "mined.tsv"
    argv = ["mine", "-m", str(tiny_model_dir), "--src", str(src), "--tgt", str(tgt), "-o", str(out)]
    result = CliRunner().invoke(app, [*argv, "--threshold", "auto", "--dev-languages", "af,eu"])
    assert result.exit_code == 0, result.output
    record = json.loads(threshold_record(out).read_text(encoding="utf-8"))
    assert record["languages"] == ["af-Latn", "eu-Latn"] and record["gold_pairs"] == 2 * N
    assert all(len(line.split("\t")) == 3 for line in out.read_text(encoding="utf-8").splitlines())


def test_cli_threshold_must_be_a_number_or_auto(tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("x\n", encoding="utf-8")
    argv = ["mine", "-m", "m", "--src", str(src), "--tgt", str(src), "-o", str(tmp_path / "o.tsv")]
    result = CliRunner().invoke(app, [*argv, "--threshold", "high"])
    assert isinstance(result.exception, ConfigError) and "auto" in str(result.exception)
    shards = ["mine", "--src-shards", str(tmp_path), "--tgt-shards", str(tmp_path), "-o", str(tmp_path / "o.tsv")]
    result = CliRunner().invoke(app, [*shards, "--threshold", "auto"])
    assert isinstance(result.exception, ConfigError) and "--model" in str(result.exception)


def test_help_says_which_default_fits_which_model_family() -> None:
    result = CliRunner().invoke(app, ["mine", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert "LASER/CRISS" in text and "e5" in text and "auto" in text
