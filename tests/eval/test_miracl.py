"""MIRACL evaluation on a tiny corpus in the official layout, with hand-computed nDCG@10 and R@100."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from helpers.lookup_encoder import LookupEncoder
from polyret.errors import DataError
from polyret.eval.miracl import evaluate_miracl

DIM = 8


def unit(*weights: float) -> list[float]:
    vector = [0.0] * DIM
    for i, w in enumerate(weights):
        vector[i] = w
    return vector


@pytest.fixture
def miracl_root(tmp_path: Path) -> Path:
    return write_miracl_root(tmp_path)


def write_miracl_root(tmp_path: Path) -> Path:
    """Five sw passages in two corpus files; topics q1-q3, qrels with q2's only relevant passage outside the corpus."""
    root = tmp_path / "miracl"
    corpus = root / "corpus" / "miracl-corpus-v1.0-sw"
    corpus.mkdir(parents=True)
    docs = [("d1", "One", "a"), ("d2", "Two", "b"), ("d3", "", "c"), ("d4", "Four", "d"), ("d5", "Five", "e")]
    with gzip.open(corpus / "docs-0.jsonl.gz", "wt", encoding="utf-8") as handle:
        for docid, title, text in docs[:3]:
            handle.write(json.dumps({"docid": docid, "title": title, "text": text}) + "\n")
    with gzip.open(corpus / "docs-1.jsonl.gz", "wt", encoding="utf-8") as handle:
        for docid, title, text in docs[3:]:
            handle.write(json.dumps({"docid": docid, "title": title, "text": text}) + "\n")
    (root / "topics.miracl-v1.0-sw-dev.tsv").write_text("q1\tfirst\nq2\tsecond\nq3\tthird\n", encoding="utf-8")
    (root / "qrels.miracl-v1.0-sw-dev.tsv").write_text(
        "q1 Q0 d2 1\nq1 Q0 d4 1\nq1 Q0 d1 0\nq2 Q0 d9 1\nq3 Q0 d5 0\n", encoding="utf-8"
    )
    return root


VECTORS = {
    # q1 ranks d2 (.99), d1 (.8), d4 (.7), d3 (.1), d5 (0); q2's only relevant passage is not in the corpus
    "first": unit(1.0),
    "Two b": unit(0.99, 0.141),
    "One a": unit(0.8, 0.6),
    "Four d": unit(0.7, 0.0, 0.714),
    "c": unit(0.1, 0.0, 0.0, 0.995),
    "Five e": unit(0.0, 0.0, 0.0, 0.0, 1.0),
    "second": unit(0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
}


def test_hand_computed_ndcg_and_recall(miracl_root: Path, tmp_path: Path) -> None:
    encoder = LookupEncoder(VECTORS, dim=DIM)
    result = evaluate_miracl(
        encoder,
        languages=["sw"],
        root=miracl_root,
        output_dir=tmp_path / "out",
        embeddings_dir=tmp_path / "emb",
        shard_size=2,
        show_progress=False,
    )
    sw = result.languages["sw-Latn"]
    ndcg_q1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))  # relevant at ranks 1 and 3
    assert sw["n"] == 2  # q3 has no relevant passage and is not averaged
    assert sw["ndcg@10"] == pytest.approx(100 * (ndcg_q1 + 0.0) / 2)
    assert sw["r@100"] == pytest.approx(100 * (1.0 + 0.0) / 2)
    assert result.main_score.metric == "ndcg@10" and result.aggregates["low-resource"]["languages"] == 1
    passages = [texts for prefix, texts in encoder.calls if prefix == "passage: "]
    assert sorted(t for batch in passages for t in batch) == sorted(["One a", "Two b", "c", "Four d", "Five e"])
    assert all(texts == ["first", "second"] for prefix, texts in encoder.calls if prefix == "query: ")
    with np.load(tmp_path / "out" / "miracl.per_query.npz") as per_query:
        assert per_query["sw-Latn/query_ids"].tolist() == ["q1", "q2"]
        assert per_query["sw-Latn/item_ids"].tolist() == ["sw-Latn/q1", "sw-Latn/q2"]
        np.testing.assert_allclose(per_query["sw-Latn/ndcg@10"], [ndcg_q1, 0.0])


def test_shard_size_does_not_change_the_scores(miracl_root: Path, tmp_path: Path) -> None:
    results = [
        evaluate_miracl(
            LookupEncoder(VECTORS, dim=DIM),
            languages=["sw"],
            root=miracl_root,
            embeddings_dir=tmp_path / f"emb{size}",
            shard_size=size,
            show_progress=False,
        )
        for size in (1, 100)
    ]
    assert results[0].languages == results[1].languages


def test_without_a_corpus_the_error_says_where_to_put_it(tmp_path: Path) -> None:
    root = tmp_path / "miracl"
    root.mkdir()
    (root / "topics.miracl-v1.0-te-dev.tsv").write_text("1\tq\n", encoding="utf-8")
    (root / "qrels.miracl-v1.0-te-dev.tsv").write_text("1 Q0 d 1\n", encoding="utf-8")
    encoder = LookupEncoder(dim=DIM)
    with pytest.raises(DataError, match=r"MIRACL corpus for 'te' not found under .*corpus/te; put"):
        evaluate_miracl(encoder, languages=["te"], root=root, show_progress=False)
    assert encoder.calls == []  # nothing encoded before the inputs are checked
