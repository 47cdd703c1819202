"""MIRACL dev retrieval (PROTOCOLS §3.4): monolingual nDCG@10 and Recall@100 per language.

For each language, queries (query prefix) search that language's passages (title + space + text, passage prefix)
by exact cosine; the corpus is encoded once into float32 shards (:func:`polyret.encode.shards.encode_to_shards`,
resumable, reused by later runs), each shard is searched exactly and the shards' top-100s are merged under the
tie rule (:func:`polyret.mining.index.search_shards`), which equals one exact search. Measures come from
trec_eval definitions via ir_measures (:func:`polyret.eval.metrics.ir_measures_scores`), averaged over the queries
with at least one relevant passage (rel > 0), then macro-averaged over languages; the low-resource group
(sw, te, bn, yo) is reported apart. Main score: mean nDCG@10.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import Field

from polyret.data.languages import MIRACL_LANGS, get_language
from polyret.data.miracl import MiraclTopics, corpus_files, corpus_root, iter_corpus, miracl_dir, read_miracl_topics
from polyret.encode.base import Encoder
from polyret.encode.shards import encode_to_shards, load_shards
from polyret.eval.bitext import language_aggregates
from polyret.eval.metrics import ir_measures_scores
from polyret.eval.options import TaskOptions
from polyret.eval.results import MainScore, TaskResult, write_result
from polyret.io import polyret_home
from polyret.mining.index import search_shards

log = logging.getLogger(__name__)

MEASURES = {"nDCG@10": "ndcg@10", "R@100": "r@100"}
DEPTH = 100


class MiraclOptions(TaskOptions):
    """The study-config options of :func:`evaluate_miracl`."""

    root: Path | None = None
    corpus_dir: Path | None = None
    embeddings_dir: Path | None = None
    max_length: int | None = Field(None, ge=1)
    shard_size: int = Field(100_000, ge=1)


def shards_dir(encoder: Encoder, lang: str, files: Sequence[Path], max_length: int | None) -> Path:
    """Default home of a language's passage shards: keyed by encoder, prefix, max length and corpus files."""
    key = "\n".join(
        [
            encoder.fingerprint,
            encoder.passage_prefix,
            str(max_length),
            *(f"{path.resolve()}:{path.stat().st_size}" for path in files),
        ]
    )
    return polyret_home() / "embeddings" / "miracl" / f"{lang}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def retrieve(
    encoder: Encoder,
    queries: dict[str, str],
    files: Sequence[Path],
    out_dir: Path,
    *,
    depth: int = DEPTH,
    shard_size: int = 100_000,
    max_length: int | None = None,
    batch_size: int = 32,
    show_progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Exact top-``depth`` passages per query as a run ``{qid: {docid: score}}`` in rank order."""
    records = ((passage.docid, passage.joined()) for passage in iter_corpus(list(files)))
    encode_to_shards(
        encoder,
        records,
        out_dir,
        shard_size=shard_size,
        dtype="float32",
        prefix=encoder.passage_prefix,
        max_length=max_length,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    docids, shards = load_shards(out_dir)
    qids = list(queries)
    query_vectors = encoder.encode(
        [queries[qid] for qid in qids], prefix=encoder.query_prefix, batch_size=batch_size, show_progress=show_progress
    )
    scores, ids = search_shards(query_vectors, shards, depth)
    return {
        qid: {docids[j]: float(s) for s, j in zip(row_s, row_i, strict=True) if j >= 0}
        for qid, row_s, row_i in zip(qids, scores.tolist(), ids.tolist(), strict=True)
    }


def _score_language(
    encoder: Encoder,
    lang: str,
    topics: MiraclTopics,
    files: Sequence[Path],
    out_dir: Path,
    *,
    shard_size: int,
    max_length: int | None,
    batch_size: int,
    show_progress: bool,
) -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, int]]:
    """One language: (metrics x100 over judged queries, per-query arrays, topic/qrels counts)."""
    judged = [qid for qid in topics.queries if any(rel > 0 for rel in topics.qrels.get(qid, {}).values())]
    run = retrieve(
        encoder,
        {qid: topics.queries[qid] for qid in judged},
        files,
        out_dir,
        shard_size=shard_size,
        max_length=max_length,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    values = ir_measures_scores(run, {qid: topics.qrels[qid] for qid in judged}, tuple(MEASURES))
    metrics = {
        key: 100.0 * float(np.mean([values[name][qid] for qid in judged])) if judged else 0.0
        for name, key in MEASURES.items()
    }
    metrics["n"] = float(len(judged))
    arrays = {
        f"{lang}/{key}": np.array([values[name][qid] for qid in judged], dtype=np.float64)
        for name, key in MEASURES.items()
    }
    arrays[f"{lang}/query_ids"] = np.array(judged)
    counts = {
        "topics": len(topics.queries),
        "judged_with_relevant": len(judged),
        "without_relevant": len(topics.queries) - len(judged),
        "qrels_without_topic": len(set(topics.qrels) - set(topics.queries)),
    }
    return metrics, arrays, counts


def evaluate_miracl(
    encoder: Encoder,
    languages: Sequence[str] = MIRACL_LANGS,
    root: str | Path | None = None,
    corpus_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    embeddings_dir: str | Path | None = None,
    max_length: int | None = None,
    shard_size: int = 100_000,
    batch_size: int = 32,
    show_progress: bool = True,
) -> TaskResult:
    """nDCG@10 and R@100 (x100) per language; see the module docstring.

    Topics/qrels come from ``root`` (default ``<data_dir>/miracl``), corpora from ``corpus_dir`` (default
    ``<root>/corpus``: ``<lang>/`` or ``miracl-corpus-v1.0-<lang>/``); every file is checked before encoding.
    Passage shards go to ``embeddings_dir/<lang>`` (default under ``$POLYRET_HOME/embeddings/miracl``).
    """
    started = time.perf_counter()
    inputs = {
        lang: (read_miracl_topics(lang, root, corpus_dir), corpus_files(lang, corpus_dir, root)) for lang in languages
    }
    per_language: dict[str, dict[str, float]] = {}
    per_query: dict[str, np.ndarray] = {}
    counts: dict[str, dict[str, int]] = {}
    for lang, (topics, files) in inputs.items():
        out_dir = (
            Path(embeddings_dir) / lang if embeddings_dir is not None else shards_dir(encoder, lang, files, max_length)
        )
        per_language[lang], arrays, counts[lang] = _score_language(
            encoder,
            lang,
            topics,
            files,
            out_dir,
            shard_size=shard_size,
            max_length=max_length,
            batch_size=batch_size,
            show_progress=show_progress,
        )
        per_query.update(arrays)
    aggregates = language_aggregates(per_language, tuple(MEASURES.values()))
    result = TaskResult(
        task="miracl",
        split="dev",
        main_score=MainScore(metric="ndcg@10", value=aggregates["all"].get("ndcg@10", 0.0)),
        languages=per_language,
        aggregates=aggregates,
        extra={
            "counts": counts,
            "low_resource": {code: get_language(code).low_resource for code in per_language},
            "caveat": "multilingual-e5 was trained on MIRACL: its scores are not zero-shot",
        },
        model=encoder.describe(),
        config={
            "languages": list(languages),
            "topics": str(miracl_dir(root)),
            "corpus": str(corpus_root(corpus_dir, root)),
            "passage_text": "title + ' ' + text",
            "prefix": {"query": encoder.query_prefix, "passage": encoder.passage_prefix},
            "max_length": max_length,
            "depth": DEPTH,
            "measures": "trec_eval via ir_measures",
            "search": "exact cosine over float32 shards, merged top-100, ties to the lower corpus position",
            "averaging": "queries with >= 1 relevant passage, then macro over languages",
        },
        duration_s=time.perf_counter() - started,
    )
    if output_dir is not None:
        result = write_result(output_dir, result, per_query)
    return result
