"""TREC run files beside LAReQA and MIRACL results: ir_measures re-scores them to the result's own numbers."""

from __future__ import annotations

import gzip
from pathlib import Path

import ir_measures
import numpy as np
import pytest

from helpers.lookup_encoder import LookupEncoder
from polyret.data.languages import language_key
from polyret.errors import DataError
from polyret.eval.lareqa import evaluate_lareqa
from polyret.eval.miracl import evaluate_miracl
from polyret.eval.results import read_per_query, read_result, write_trec_run

from .test_lareqa import write_tiny
from .test_miracl import DIM, VECTORS, write_miracl_root


def _per_query(qrels: Path, run: Path, measure: str) -> dict[str, float]:
    parsed = ir_measures.parse_measure(measure)
    return {
        m.query_id: m.value
        for m in ir_measures.iter_calc(
            [parsed], ir_measures.read_trec_qrels(str(qrels)), ir_measures.read_trec_run(str(run))
        )
    }


def test_lareqa_mul_run_rescores_to_mul_map(tmp_path: Path):
    root = write_tiny(tmp_path)
    encoder = LookupEncoder({}, dim=5, prefixed=True)  # hashed pseudo-random vectors: no tied scores
    out = tmp_path / "out"
    result = evaluate_lareqa(
        encoder, "mlqa-r", candidate_text="sentence", root=root, output_dir=out, show_progress=False
    )
    files = read_result(out / "mlqa-r.json").extra["run_files"]["mul"]
    assert files == {"run": "mlqa-r.mul.run.trec.gz", "qrels": "mlqa-r.mul.qrels.trec.gz"}
    lines = gzip.decompress((out / files["run"]).read_bytes()).decode().splitlines()
    fields = lines[0].split()
    assert len(lines) == 5 * 5 and fields[1] == "Q0" and fields[3] == "1" and fields[5] == "polyret-mlqa-r-mul"
    qrels = gzip.decompress((out / files["qrels"]).read_bytes()).decode().splitlines()
    assert qrels[:2] == ["de-Latn:q1 0 de-0-0-1 1", "de-Latn:q1 0 en-0-0-1 1"]  # query ids: language key:question
    ap = _per_query(out / files["qrels"], out / files["run"], "AP")
    arrays = read_per_query(out / "mlqa-r.json", result)
    for lang in (language_key("de"), language_key("en")):
        ids = arrays[f"{lang}/query_ids"].tolist()
        np.testing.assert_allclose([ap[f"{lang}:{qid}"] for qid in ids], arrays[f"{lang}/mul.map"], rtol=1e-9)
        assert np.mean([ap[f"{lang}:{qid}"] for qid in ids]) * 100 == pytest.approx(result.languages[lang]["mul.map"])


def test_lareqa_without_mul_writes_no_run(tmp_path: Path):
    root = write_tiny(tmp_path)
    out = tmp_path / "out"
    result = evaluate_lareqa(
        LookupEncoder({}, dim=5, prefixed=True),
        "mlqa-r",
        settings=["mono"],
        root=root,
        output_dir=out,
        show_progress=False,
    )
    assert "run_files" not in result.extra and not list(out.glob("*.trec"))


def test_miracl_runs_rescore_against_the_official_qrels(tmp_path: Path):
    root = write_miracl_root(tmp_path)
    result = evaluate_miracl(
        LookupEncoder(VECTORS, dim=DIM),
        languages=["sw"],
        root=root,
        output_dir=tmp_path / "out",
        embeddings_dir=tmp_path / "emb",
        show_progress=False,
    )
    assert result.extra["run_files"] == {"sw": "miracl.sw.run.trec.gz"}
    ndcg = _per_query(root / "qrels.miracl-v1.0-sw-dev.tsv", tmp_path / "out" / "miracl.sw.run.trec.gz", "nDCG@10")
    mean = np.mean([ndcg.get(q, 0.0) for q in ("q1", "q2")]) * 100
    assert mean == pytest.approx(result.languages[language_key("sw")]["ndcg@10"])


def test_a_run_file_refuses_white_space_in_ids(tmp_path: Path):
    with pytest.raises(DataError, match="query id 'a b' is empty or contains white space"):
        write_trec_run(tmp_path / "r.trec", {"a b": [("d", 1.0)]}, "tag")
    assert not (tmp_path / "r.trec").exists()
