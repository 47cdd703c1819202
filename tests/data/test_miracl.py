"""MIRACL readers: topics, TREC and BEIR qrels, streamed JSONL corpora, and the missing-corpus message."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from polyret.data.miracl import (
    corpus_files,
    iter_corpus,
    read_beir_qrels,
    read_beir_queries,
    read_miracl_topics,
    read_topics,
    read_trec_qrels,
)
from polyret.errors import DataError, UnknownNameError


def test_topics_and_trec_qrels(tmp_path: Path) -> None:
    (tmp_path / "topics.tsv").write_text("6\tBandari kubwa?\n8\tMji mkuu?\n", encoding="utf-8")
    (tmp_path / "qrels.tsv").write_text("6 Q0 32589#0 1\n6\tQ0\t33690#3\t0\n8 Q0 1#1 1\n", encoding="utf-8")
    assert read_topics(tmp_path / "topics.tsv") == {"6": "Bandari kubwa?", "8": "Mji mkuu?"}
    assert read_trec_qrels(tmp_path / "qrels.tsv") == {"6": {"32589#0": 1, "33690#3": 0}, "8": {"1#1": 1}}


@pytest.mark.parametrize(
    ("name", "content", "reader", "message"),
    [
        ("t.tsv", "6\tok\n7 no tab\n", read_topics, r"t\.tsv:2: expected qid<TAB>query"),
        ("q.tsv", "6 Q0 d 1\n6 Q0 d\n", read_trec_qrels, r"q\.tsv:2: expected 'qid Q0 docid rel'"),
        ("q.tsv", "6 Q0 d one\n", read_trec_qrels, r"q\.tsv:1: expected"),
        ("b.tsv", "query-id\tcorpus-id\tscore\n1\td\tx\n", read_beir_qrels, r"b\.tsv:2: expected query-id"),
        ("c.jsonl", '{"_id": "1", "text": "ok"}\n{"_id": "2", "text": \n', read_beir_queries, r"c\.jsonl:2: malformed"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, name: str, content: str, reader, message: str) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        reader(tmp_path / name)


def test_beir_layout(tmp_path: Path) -> None:
    folder = tmp_path / "corpus" / "sw"
    (folder / "qrels").mkdir(parents=True)
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "swali"}\n', encoding="utf-8")
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "maandishi"}\n', encoding="utf-8")
    topics = read_miracl_topics("sw", root=tmp_path)
    assert topics.queries == {"q1": "swali"} and topics.qrels == {"q1": {"d1": 1}}
    files = corpus_files("sw", root=tmp_path)
    assert [p.joined() for p in iter_corpus(files)] == ["T maandishi"]


def test_hugging_face_corpus_layout_streams_gzip_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "miracl-corpus-v1.0-yo"
    folder.mkdir()
    for name, docs in (("docs-1.jsonl.gz", [("b#0", "", "keji")]), ("docs-0.jsonl.gz", [("a#0", "A", "kini")])):
        with gzip.open(folder / name, "wt", encoding="utf-8") as handle:
            for docid, title, text in docs:
                handle.write(json.dumps({"docid": docid, "title": title, "text": text}) + "\n")
    passages = list(iter_corpus(corpus_files("yo", corpus_dir=tmp_path)))
    assert [(p.docid, p.joined()) for p in passages] == [("a#0", "A kini"), ("b#0", "keji")]


def test_missing_corpus_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"MIRACL corpus for 'te' not found under .*te; put the MIRACL te passages"):
        corpus_files("te", corpus_dir=tmp_path)


def test_shared_topics_and_qrels_counts(shared_data: Path) -> None:
    """README of ../shared/data: sw 482 queries, 5092 qrels lines (910 relevant); yo 119 / 1188 (144)."""
    for lang, n_topics, n_lines, n_relevant in (("sw", 482, 5092, 910), ("yo", 119, 1188, 144)):
        topics = read_miracl_topics(lang, root=shared_data / "miracl")
        assert len(topics.queries) == n_topics
        assert sum(len(docs) for docs in topics.qrels.values()) == n_lines
        assert sum(rel > 0 for docs in topics.qrels.values() for rel in docs.values()) == n_relevant


@pytest.mark.parametrize("lang", ["../../x", "xx", "kk", "sw/../../etc"])
def test_languages_are_checked_against_the_language_table(tmp_path: Path, lang: str) -> None:
    with pytest.raises(UnknownNameError, match="unknown MIRACL language"):
        read_miracl_topics(lang, tmp_path)
    with pytest.raises(UnknownNameError, match="unknown MIRACL language"):
        corpus_files(lang, tmp_path)


def test_paths_are_built_from_the_canonical_code_not_the_string_given(tmp_path: Path) -> None:
    (tmp_path / "topics.miracl-v1.0-sw-dev.tsv").write_text("6\tBandari kubwa?\n", encoding="utf-8")
    (tmp_path / "qrels.miracl-v1.0-sw-dev.tsv").write_text("6 Q0 1#0 1\n", encoding="utf-8")
    (tmp_path / "x").mkdir()
    assert read_miracl_topics("sw-../../x", tmp_path).source == tmp_path / "topics.miracl-v1.0-sw-dev.tsv"
    assert read_miracl_topics("swa", tmp_path).lang == "sw"
