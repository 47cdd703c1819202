"""LAReQA evaluation: a hand-computed case, a brute-force cross-check on real data, and the run plumbing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.lookup_encoder import LookupEncoder
from helpers.squad import lareqa_paragraph
from polyret.data.lareqa import load_lareqa
from polyret.errors import UnknownNameError
from polyret.eval.lareqa import candidate_texts, evaluate_lareqa, score_lareqa
from polyret.eval.results import read_per_query, read_result


def table_encoder() -> LookupEncoder:
    """Vectors per (prefix + text) from HAND_TABLE; other texts get hashed pseudo-random vectors."""
    return LookupEncoder(HAND_TABLE, dim=5, prefixed=True)


def write_tiny(root: Path) -> Path:
    """de: A0 A1 | A2 (3 candidates; q3 only in de), en: B0 B1. Canonical indexes A0..A2 = 0..2, B0, B1 = 3, 4."""
    folder = root / "lareqa" / "mlqa-r"
    folder.mkdir(parents=True)
    de = {
        "data": [
            {"paragraphs": [lareqa_paragraph(["A0", "A1"], [("q1", "de q1", 1), ("q2", "de q2", 0)])]},
            {"paragraphs": [lareqa_paragraph(["A2"], [("q3", "de q3", 0)])]},
        ]
    }
    en = {"data": [{"paragraphs": [lareqa_paragraph(["B0", "B1"], [("q1", "en q1", 1), ("q2", "en q2", 0)])]}]}
    (folder / "de.json").write_text(json.dumps(de), encoding="utf-8")
    (folder / "en.json").write_text(json.dumps(en), encoding="utf-8")
    return root


# Candidates are one-hot, so a query vector *is* its score row over [A0, A1, A2, B0, B1].
HAND_TABLE = {
    **{f"passage: {name}": np.eye(5)[i] for i, name in enumerate(["A0", "A1", "A2", "B0", "B1"])},
    "query: en q1": np.array([0.9, 0.5, 0.0, 0.7, 0.5]),
    "query: en q2": np.array([0.2, 0.2, 0.2, 0.2, 0.2]),  # all tied: canonical order decides
    "query: de q1": np.array([0.1, 0.3, 0.2, 0.4, 0.0]),
    "query: de q2": np.array([1.0, 0.0, 0.0, 0.0, 0.0]),
    "query: de q3": np.array([0.0, 0.0, 0.5, 0.6, 0.0]),
}


def test_hand_computed_case(tmp_path):
    root = write_tiny(tmp_path)
    encoder = table_encoder()
    result = evaluate_lareqa(
        encoder, "mlqa-r", candidate_text="sentence", root=root, output_dir=tmp_path / "out", show_progress=False
    )
    en, de = result.languages["en-Latn"], result.languages["de-Latn"]
    # en q1: mul ranks A0 1, B0 2, A1 3, B1 4 (tie with A1 -> lower index first); en q2: A0 1 ... B0 4
    assert en["mono.map"] == pytest.approx((0.5 + 1) / 2 * 100)
    assert en["mono.r@1"] == pytest.approx(50)
    assert en["cross.map"] == pytest.approx((0.5 + 1) / 2 * 100)
    assert en["mul.map"] == pytest.approx(((1 / 3 + 2 / 4) / 2 + (1 + 2 / 4) / 2) / 2 * 100)
    assert en["mul.rank_distance"] == pytest.approx((1 + 3) / 2)
    # de q3's item has no en answer: skipped for Cr.(de->en), R_q = {A2} in Mul.
    assert de["mono.map"] == pytest.approx(100)
    assert de["cross.map"] == pytest.approx((0.5 + 1) / 2 * 100) and de["cross.n"] == 2
    assert de["cross.r@1"] == pytest.approx(50)
    de_mul = [(1 / 2 + 2 / 5) / 2, (1 + 2 / 4) / 2, 1 / 2]
    assert de["mul.map"] == pytest.approx(np.mean(de_mul) * 100)
    assert de["mul.rank_distance"] == pytest.approx(2)
    assert de["mul.r@10"] == pytest.approx(100) and de["n"] == 3
    assert de["mul.map@20"] == pytest.approx(de["mul.map"]) == pytest.approx(de["mul.ap@20_trec"])
    # macro (primary) vs micro
    en_mul = en["mul.map"] / 100
    assert result.main_score.metric == "mul.map"
    assert result.main_score.value == pytest.approx((np.mean(de_mul) + en_mul) / 2 * 100)
    assert result.aggregates["micro"]["mul.map"] == pytest.approx(
        (sum(de_mul) + (1 / 3 + 2 / 4) / 2 + (1 + 2 / 4) / 2) / 5 * 100
    )
    assert result.aggregates["all"]["cross.map"] == pytest.approx(75)
    assert result.extra["lang_matrix_map"] == {
        "de-Latn": {"de-Latn": 100.0, "en-Latn": 75.0},
        "en-Latn": {"en-Latn": 75.0, "de-Latn": 75.0},
    }
    assert result.extra["lang_matrix_n"]["de-Latn"] == {"de-Latn": 3, "en-Latn": 2}
    assert result.config["candidate_text"] == result.extra["candidate_text"] == "sentence"
    # prefixes: questions with the query prefix, candidates with the passage prefix, each encoded once
    assert [(prefix, len(texts)) for prefix, texts in encoder.calls] == [("query: ", 5), ("passage: ", 5)]
    # written result + per-query arrays
    saved = read_result(tmp_path / "out" / "mlqa-r.json")
    arrays = read_per_query(tmp_path / "out" / "mlqa-r.json", saved)
    assert arrays["de-Latn/query_ids"].tolist() == ["q1", "q2", "q3"]
    # a question and its translations are one item: the item id is the shared question id, in every language
    assert arrays["de-Latn/item_ids"].tolist() == ["q1", "q2", "q3"]
    assert arrays["en-Latn/item_ids"].tolist() == arrays["en-Latn/query_ids"].tolist()
    np.testing.assert_allclose(arrays["de-Latn/mul.map"], de_mul)
    assert np.isnan(arrays["de-Latn/cross.map"][2])
    assert arrays["de-Latn/cross.langs"].tolist() == ["en-Latn"]


def test_settings_subset_and_bad_names(tmp_path):
    root = write_tiny(tmp_path)
    result = evaluate_lareqa(
        table_encoder(),
        "mlqa-r",
        candidate_text="sentence",
        root=root,
        settings=("mono",),
        show_progress=False,
    )
    assert result.main_score.metric == "mono.map"
    assert set(result.languages["de-Latn"]) == {"n", "mono.map", "mono.r@1"}
    with pytest.raises(UnknownNameError, match="valid: cross, mono, mul"):
        evaluate_lareqa(table_encoder(), "mlqa-r", root=root, settings=("multi",))
    with pytest.raises(UnknownNameError, match="candidate text"):
        evaluate_lareqa(table_encoder(), "mlqa-r", root=root, candidate_text="paragraph")  # type: ignore


def test_candidate_text_variants(tmp_path):
    data = load_lareqa("mlqa-r", root=write_tiny(tmp_path))
    assert candidate_texts(data, "sentence")[:2] == ["A0", "A1"]
    assert candidate_texts(data, "sentence+context")[:2] == ["A0 A0 A1", "A1 A0 A1"]


def _brute_force(q: np.ndarray, c: np.ndarray, data) -> dict[str, dict[str, list[float]]]:
    """Independent reference: full stable sorts, pools by boolean language masks."""
    items = data.answers_by_item()
    langs = np.array([cand.lang for cand in data.candidates])
    scores = (q.astype(np.float64) @ c.astype(np.float64).T).astype(np.float32)
    out: dict[str, dict[str, list[float]]] = {}
    for row, question in enumerate(data.questions):
        entry = out.setdefault(question.lang, {"mono": [], "cross": [], "mul": [], "rd": []})

        def ap(pool_mask: np.ndarray, relevant: set[int], row: int = row) -> float:
            idx = np.flatnonzero(pool_mask)
            order = idx[np.argsort(-scores[row, idx], kind="stable")]
            hits, total = 0, 0.0
            for position, cand in enumerate(order, start=1):
                if cand in relevant:
                    hits += 1
                    total += hits / position
            return total / len(relevant)

        answers = items[question.id]
        entry["mono"].append(ap(langs == question.lang, set(answers[question.lang])))
        per_lc = [ap(langs == lc, set(answers[lc])) for lc in sorted(answers) if lc != question.lang]
        entry["cross"].append(float(np.mean(per_lc)) if per_lc else float("nan"))
        everything = {a for values in answers.values() for a in values}
        entry["mul"].append(ap(np.ones(len(langs), dtype=bool), everything))
        order = np.argsort(-scores[row], kind="stable")
        ranks = np.empty(len(order), dtype=int)
        ranks[order] = np.arange(1, len(order) + 1)
        entry["rd"].append(float(ranks[list(everything)].max() - ranks[list(everything)].min()))
    return out


@pytest.mark.integration
@pytest.mark.parametrize("name", ["xquad-r", "mlqa-r"])
def test_matches_brute_force_on_real_data_with_ties(shared_data, name):
    data = load_lareqa(name, root=shared_data, articles=3)
    rng = np.random.default_rng(0)
    q = rng.normal(size=(len(data.questions), 16)).astype(np.float32)
    c = np.round(rng.normal(size=(len(data.candidates), 16)), 1).astype(np.float32)
    c[::7] = c[0]  # many exact duplicate candidates -> tied scores
    got = score_lareqa(q, c, data, block_size=7)
    want = _brute_force(q, c, data)
    for lang, scores in got.items():
        np.testing.assert_allclose(scores.values["mono.map"], want[lang]["mono"], rtol=1e-12)
        np.testing.assert_allclose(scores.values["cross.map"], want[lang]["cross"], rtol=1e-12)
        np.testing.assert_allclose(scores.values["mul.map"], want[lang]["mul"], rtol=1e-12)
        np.testing.assert_allclose(scores.values["mul.rank_distance"], want[lang]["rd"])


@pytest.mark.integration
def test_tiny_model_end_to_end_on_real_files(shared_data, tiny_model_dir, tmp_path):
    encode_module = pytest.importorskip("polyret.encode.encoder")
    encoder = encode_module.load_encoder(str(tiny_model_dir), cache=False)
    result = evaluate_lareqa(
        encoder, "xquad-r", languages=["en", "de"], articles=1, output_dir=tmp_path, max_length=64, show_progress=False
    )
    assert set(result.languages) == {"de-Latn", "en-Latn"}
    assert 0 <= result.main_score.value <= 100
    assert (tmp_path / "xquad-r.json").exists() and (tmp_path / "xquad-r.per_query.npz").exists()
