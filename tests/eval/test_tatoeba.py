"""Tatoeba evaluation: a hand-computed case with ties, a numpy cross-check, the tiny model and the real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.lookup_encoder import LookupEncoder
from polyret.data.languages import language_key
from polyret.data.tatoeba import read_tatoeba_pair, tatoeba_dir
from polyret.errors import UnknownNameError
from polyret.eval.results import read_per_query, read_result
from polyret.eval.tatoeba import evaluate_tatoeba


def write_pair(root: Path, code: str, xx: list[str], en: list[str]) -> None:
    folder = tatoeba_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"tatoeba.{code}-eng.{code}").write_text("\n".join(xx) + "\n", encoding="utf-8")
    (folder / f"tatoeba.{code}-eng.eng").write_text("\n".join(en) + "\n", encoding="utf-8")


def basis(*weights: tuple[int, float]) -> list[float]:
    vector = [0.0] * 8
    for axis, weight in weights:
        vector[axis] = weight
    return vector


# sw: English line i is axis i. xx0 = e0 (right), xx1 = e2 (wrong), xx2 = e2 (right), xx3 = e0 + e3 (ties 0 and 3,
# the lower index wins: wrong). xx→en = [1, 0, 1, 0] → 50. en→xx: E0 → xx0 (1.0 beats 0.71) right; E1 is orthogonal
# to all, a four-way tie → xx0, wrong; E2 ties xx1/xx2 → xx1, wrong; E3 → xx3 right: [1, 0, 0, 1] → 50.
HAND_VECTORS = {
    **{f"E{i}": basis((i, 1.0)) for i in range(4)},
    "xx0": basis((0, 1.0)),
    "xx1": basis((2, 1.0)),
    "xx2": basis((2, 1.0)),
    "xx3": basis((0, 1.0), (3, 1.0)),
}


def test_hand_computed_accuracies_with_ties(tmp_path: Path) -> None:
    write_pair(tmp_path, "swh", ["xx0", "xx1", "xx2", "xx3"], ["E0", "E1", "E2", "E3"])
    write_pair(tmp_path, "deu", ["E0", "E1"], ["E0", "E1"])  # identical sides: 100 both ways
    encoder = LookupEncoder(HAND_VECTORS)
    result = evaluate_tatoeba(
        encoder, languages=["sw", "de"], root=tmp_path, output_dir=tmp_path / "out", show_progress=False
    )
    # MTEB's weighted scores by hand. xx→en predicts [0, 2, 2, 0] for gold [0, 1, 2, 3]: labels 0 and 2 are right
    # and each chosen twice, so P = (1/2 + 1/2)/4, R = 2/4, F1 = (2/3 + 2/3)/4. en→xx predicts [0, 0, 1, 3]: label 0
    # right and chosen twice, label 3 right and chosen once: P = (1/2 + 1)/4, F1 = (2/3 + 1)/4.
    assert result.languages["sw-Latn"] == pytest.approx(
        {
            "xx2en.accuracy": 50.0,
            "en2xx.accuracy": 50.0,
            "mean.accuracy": 50.0,
            "xx2en.precision": 25.0,
            "xx2en.recall": 50.0,
            "xx2en.f1": 100 / 3,
            "en2xx.precision": 37.5,
            "en2xx.recall": 50.0,
            "en2xx.f1": 500 / 12,
            "n": 4.0,
        }
    )
    assert result.languages["de-Latn"] == {
        "xx2en.accuracy": 100.0,
        "en2xx.accuracy": 100.0,
        "mean.accuracy": 100.0,
        **{f"{d}.{m}": 100.0 for d in ("xx2en", "en2xx") for m in ("f1", "precision", "recall")},
        "n": 2.0,
    }
    assert result.main_score.metric == "xx2en.accuracy" and result.main_score.value == 75.0
    low = result.aggregates["low-resource"]
    assert low == pytest.approx(
        {"languages": 1.0, **{k: v for k, v in result.languages["sw-Latn"].items() if k != "n"}}
    )
    assert result.aggregates["other"]["xx2en.accuracy"] == 100.0 and result.aggregates["all"]["languages"] == 2.0
    assert {prefix for prefix, _ in encoder.calls} == {encoder.query_prefix}  # query prefix on both sides
    saved = read_result(tmp_path / "out" / "tatoeba.json")
    per_query = read_per_query(tmp_path / "out" / "tatoeba.json", saved)
    assert per_query["sw-Latn/xx2en.accuracy"].tolist() == [1, 0, 1, 0]
    assert per_query["sw-Latn/en2xx.accuracy"].tolist() == [1, 0, 0, 1]
    assert per_query["sw-Latn/query_ids"].tolist() == [0, 1, 2, 3]
    # one item per line pair and language; both direction arrays are aligned with it
    assert per_query["sw-Latn/item_ids"].tolist() == ["sw-Latn/0", "sw-Latn/1", "sw-Latn/2", "sw-Latn/3"]
    assert per_query["de-Latn/item_ids"][0] == "de-Latn/0"
    assert saved.config["languages"] == ["sw", "de"] and saved.extra["low_resource"] == {
        "sw-Latn": True,
        "de-Latn": False,
    }


def test_matches_a_numpy_argmax_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    xx, en = [f"x{i}" for i in range(40)], [f"e{i}" for i in range(40)]
    # Noisy translations on a coarse grid, so that some scores tie exactly.
    base = rng.integers(-2, 3, size=(40, 8)).astype(np.float32)
    noisy = base + rng.integers(-2, 3, size=(40, 8)) * (rng.random((40, 1)) < 0.5)
    vectors = {**dict(zip(en, base.tolist(), strict=True)), **dict(zip(xx, noisy.tolist(), strict=True))}
    vectors = {text: vector if np.any(vector) else basis((0, 1.0)) for text, vector in vectors.items()}
    write_pair(tmp_path, "fra", xx, en)
    encoder = LookupEncoder(vectors)
    result = evaluate_tatoeba(encoder, languages=["fr"], root=tmp_path, show_progress=False)
    x = encoder.encode(xx)
    e = encoder.encode(en)
    scores = x @ e.T  # np.argmax returns the first maximum: the lowest index, as the protocol requires
    expected_xx2en = 100 * np.mean(np.argmax(scores, axis=1) == np.arange(40))
    expected_en2xx = 100 * np.mean(np.argmax(scores.T, axis=1) == np.arange(40))
    assert result.languages["fr-Latn"]["xx2en.accuracy"] == pytest.approx(expected_xx2en)
    assert result.languages["fr-Latn"]["en2xx.accuracy"] == pytest.approx(expected_en2xx)
    assert 0 < expected_xx2en < 100


def test_max_sentences_and_unknown_language(tmp_path: Path) -> None:
    write_pair(tmp_path, "swh", ["a", "b", "c"], ["A", "B", "C"])
    encoder = LookupEncoder()
    result = evaluate_tatoeba(encoder, languages=["sw"], root=tmp_path, max_sentences=2, show_progress=False)
    assert result.languages["sw-Latn"]["n"] == 2.0 and result.config["max_sentences"] == 2
    calls = len(encoder.calls)
    with pytest.raises(UnknownNameError, match="'de'; valid: swh"):
        evaluate_tatoeba(encoder, languages=["sw", "de"], root=tmp_path)
    assert len(encoder.calls) == calls  # files are checked before anything is encoded


def test_tiny_model_end_to_end(tiny_model_dir: Path, tmp_path: Path) -> None:
    from polyret.encode.encoder import load_encoder

    write_pair(
        tmp_path,
        "swh",
        ["paka analala kwenye mkeka", "mbwa anakimbia", "nyumba ni ndogo"],
        ["the cat sleeps on the mat", "the dog runs", "the house is small"],
    )
    write_pair(tmp_path, "deu", ["der Hund läuft im Park", "die Katze schläft"], ["the dog runs", "the cat sleeps"])
    encoder = load_encoder(str(tiny_model_dir), cache=False)
    result = evaluate_tatoeba(
        encoder, languages=["sw", "de"], root=tmp_path, output_dir=tmp_path / "out", show_progress=False
    )
    assert {lang: scores["n"] for lang, scores in result.languages.items()} == {"sw-Latn": 3.0, "de-Latn": 2.0}
    for scores in result.languages.values():
        assert all(0 <= scores[key] <= 100 for key in ("xx2en.accuracy", "en2xx.accuracy", "mean.accuracy"))
    saved = read_result(tmp_path / "out" / "tatoeba.json")
    assert saved.languages == result.languages and saved.model["fingerprint"] == encoder.fingerprint


@pytest.mark.integration
def test_real_model_on_three_small_languages(shared_data: Path, tmp_path: Path, e5_model_dir: Path) -> None:
    from polyret.encode.encoder import load_encoder

    encoder = load_encoder("multilingual-e5-small")
    result = evaluate_tatoeba(encoder, languages=["jv", "te", "ta"], root=shared_data, show_progress=False)
    published = {"jv": 62.4, "te": 92.7, "ta": 88.3}  # MTEB xx→en, fp32 weights (PROTOCOLS.md §5.3)
    for lang, value in published.items():
        scores = result.languages[language_key(lang)]
        assert scores["n"] == len(read_tatoeba_pair(lang, shared_data))
        assert abs(scores["xx2en.accuracy"] - value) < 8, (lang, scores)
