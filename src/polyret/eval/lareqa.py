"""LAReQA evaluation: XQuAD-R and MLQA-R in the Mo. / Cr. / Mul. settings of arXiv 2408.10536 (PROTOCOLS §3.1).

How a run works:

1. :func:`polyret.data.lareqa.load_lareqa` gives candidates (sentences, canonical order: language code then
   file order) and questions (item id = question id).
2. Questions are encoded once with the query prefix, candidates once with the passage prefix (identical
   texts are encoded once and share a vector; they stay separate candidates).
3. For each query language, query blocks are scored against **all** candidates at once
   (:func:`polyret.eval.metrics.score_block`, fp32); Mo. and Cr. use column slices of that matrix (a
   language's candidates are contiguous), Mul. uses every column. Ranks are exact over the full pool, ties
   by ascending canonical index.

Metric keys (x100 except ``*.rank_distance`` and counts):

- ``mono.map``, ``mono.r@1``: pool = the query language's candidates, one relevant sentence.
- ``cross.map``, ``cross.r@1``: for each other language Lc, pool = Lc's candidates; the per-language value is
  the mean over Lc. On MLQA-R a query whose item has no Lc answer is skipped for Lc; ``cross.n`` counts
  the (query, Lc) pairs scored.
- ``mul.map`` (**main score**), ``mul.map@20`` (XTREME-R normalisation: top-20 sum / min(|R|, 20)),
  ``mul.ap@20_trec`` (trec_eval ``map_cut_20``: / |R|), ``mul.r@10`` and ``mul.rank_distance``: pool = all
  languages, R_q = every parallel answer (including the query language's).

Aggregates: ``all`` = macro average over settings (primary: per-language means, then the mean over query
languages; for Cr. the mean over all Lq→Lc settings); ``micro`` = mean over all queries (LAReQA / XTREME-R
style; equal to macro on XQuAD-R); ``paper-seen`` / ``paper-unseen`` split query languages by the paper's
training languages. ``extra`` holds the query x candidate language mAP and R@1 matrices (diagonal = Mo.).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from polyret.data.languages import PAPER_TRAIN_LANGS
from polyret.data.lareqa import LareqaData, load_lareqa
from polyret.encode.base import Encoder
from polyret.errors import UnknownNameError
from polyret.eval.metrics import (
    ap_at_k_batch,
    average_precision_batch,
    matrix_relevant_ranks,
    rank_distance_batch,
    recall_at_k_batch,
    score_block,
)
from polyret.eval.options import TaskOptions
from polyret.eval.results import MainScore, TaskResult, result_path, write_result

log = logging.getLogger(__name__)

CandidateText = Literal["sentence", "sentence+context"]
CANDIDATE_TEXTS: tuple[str, ...] = ("sentence", "sentence+context")
SETTINGS: tuple[str, ...] = ("mono", "cross", "mul")
MAIN_METRIC = "mul.map"
TIE_RULE = "score descending, ties by ascending canonical candidate index (language code, then file order)"
# Per-query metrics of each setting; x100 unless listed in _UNSCALED.
_MONO_METRICS = ("mono.map", "mono.r@1")
_CROSS_METRICS = ("cross.map", "cross.r@1")
_MUL_METRICS = ("mul.map", "mul.map@20", "mul.ap@20_trec", "mul.r@10", "mul.rank_distance")
_UNSCALED = {"mul.rank_distance"}


@dataclass
class LanguageScores:
    """Per-query values for the questions of one query language (fixed order: file order)."""

    query_ids: list[str]
    values: dict[str, np.ndarray] = field(default_factory=dict)  # metric -> (n_q,)
    cross_langs: tuple[str, ...] = ()
    cross_map: np.ndarray | None = None  # (n_q, len(cross_langs)), NaN where the item lacks Lc
    cross_r1: np.ndarray | None = None


class LareqaOptions(TaskOptions):
    """The study-config options of :func:`evaluate_lareqa` (XQuAD-R and MLQA-R)."""

    candidate_text: CandidateText = "sentence+context"
    settings: list[Literal["mono", "cross", "mul"]] | None = None
    max_length: int | None = Field(512, ge=1)
    #: the first N articles per language (quick runs)
    articles: int | None = Field(None, ge=1)
    root: Path | None = None
    block_size: int = Field(256, ge=1)


def candidate_texts(data: LareqaData, candidate_text: CandidateText = "sentence+context") -> list[str]:
    """Candidate strings (without prefix): the sentence, or sentence + space + paragraph (PROTOCOLS §3.1 [D])."""
    if candidate_text == "sentence":
        return [c.text for c in data.candidates]
    if candidate_text == "sentence+context":
        return [f"{c.text} {c.context}" for c in data.candidates]
    raise UnknownNameError("candidate text", candidate_text, CANDIDATE_TEXTS)


def _encode_unique(
    encoder: Encoder, texts: Sequence[str], prefix: str, max_length: int | None, batch_size: int, show_progress: bool
) -> np.ndarray:
    unique = list(dict.fromkeys(texts))
    position = {text: i for i, text in enumerate(unique)}
    vectors = np.asarray(
        encoder.encode(
            unique, prefix=prefix, max_length=max_length, batch_size=batch_size, show_progress=show_progress
        ),
        dtype=np.float32,
    )
    if vectors.ndim != 2 or len(vectors) != len(unique):
        raise ValueError(f"encoder returned shape {vectors.shape} for {len(unique)} texts")
    return vectors[np.fromiter((position[t] for t in texts), dtype=np.int64, count=len(texts))]


def score_lareqa(
    query_vectors: np.ndarray,
    candidate_vectors: np.ndarray,
    data: LareqaData,
    settings: Sequence[str] = SETTINGS,
    block_size: int = 256,
) -> dict[str, LanguageScores]:
    """Per-query LAReQA metrics (fractions, not x100) for every query language; see the module docstring."""
    if len(query_vectors) != len(data.questions) or len(candidate_vectors) != len(data.candidates):
        raise ValueError("vectors do not match the data's questions and candidates")
    slices = data.candidate_slices()
    items = data.answers_by_item()
    pool = np.asarray(candidate_vectors, dtype=np.float64)
    rows_by_lang: dict[str, list[int]] = {}
    for row, question in enumerate(data.questions):
        rows_by_lang.setdefault(question.lang, []).append(row)
    out: dict[str, LanguageScores] = {}
    for lang, rows in rows_by_lang.items():
        questions = [data.questions[r] for r in rows]
        scores = LanguageScores(query_ids=[q.id for q in questions])
        n = len(rows)
        others = tuple(c for c in slices if c != lang) if "cross" in settings else ()
        scores.cross_langs = others
        if "mono" in settings:
            for key in _MONO_METRICS:
                scores.values[key] = np.full(n, np.nan)
        if others:
            scores.cross_map = np.full((n, len(others)), np.nan)
            scores.cross_r1 = np.full((n, len(others)), np.nan)
        if "mul" in settings:
            for key in _MUL_METRICS:
                scores.values[key] = np.full(n, np.nan)
        for start in range(0, n, block_size):
            block_rows = rows[start : start + block_size]
            block_questions = questions[start : start + block_size]
            block = score_block(query_vectors[block_rows], pool)
            stop = start + len(block_rows)
            if "mono" in settings and lang in slices:
                own = slices[lang]
                relevant = [np.asarray(q.answer_candidates) - own.start for q in block_questions]
                ranks = matrix_relevant_ranks(block[:, own], relevant)
                n_rel = [len(rel) for rel in relevant]
                scores.values["mono.map"][start:stop] = average_precision_batch(ranks, n_rel)
                scores.values["mono.r@1"][start:stop] = recall_at_k_batch(ranks, n_rel, 1)
            for j, other in enumerate(others):
                cols = slices[other]
                have = np.asarray([i for i, q in enumerate(block_questions) if other in items[q.id]], dtype=np.int64)
                if not len(have):
                    continue
                relevant = [np.asarray(items[block_questions[i].id][other]) - cols.start for i in have]
                sub = block[:, cols] if len(have) == len(block_questions) else block[have][:, cols]
                ranks = matrix_relevant_ranks(sub, relevant)
                n_rel = [len(rel) for rel in relevant]
                scores.cross_map[start + have, j] = average_precision_batch(ranks, n_rel)  # type: ignore[index]
                scores.cross_r1[start + have, j] = recall_at_k_batch(ranks, n_rel, 1)  # type: ignore[index]
            if "mul" in settings:
                relevant = [
                    np.asarray(sorted(c for answers in items[q.id].values() for c in answers)) for q in block_questions
                ]
                ranks = matrix_relevant_ranks(block, relevant)
                n_rel = [len(rel) for rel in relevant]
                scores.values["mul.map"][start:stop] = average_precision_batch(ranks, n_rel)
                scores.values["mul.map@20"][start:stop] = ap_at_k_batch(ranks, n_rel, 20, "xtreme-r")
                scores.values["mul.ap@20_trec"][start:stop] = ap_at_k_batch(ranks, n_rel, 20, "trec")
                scores.values["mul.r@10"][start:stop] = recall_at_k_batch(ranks, n_rel, 10)
                scores.values["mul.rank_distance"][start:stop] = rank_distance_batch(ranks)
        if others:
            with warnings.catch_warnings():  # rows without any Lc answer stay NaN on purpose
                warnings.simplefilter("ignore", RuntimeWarning)
                scores.values["cross.map"] = np.nanmean(scores.cross_map, axis=1)
                scores.values["cross.r@1"] = np.nanmean(scores.cross_r1, axis=1)
        out[lang] = scores
    return out


def _scale(metric: str, value: float) -> float:
    return float(value) if metric in _UNSCALED else float(value) * 100.0


def _mean(values: Sequence[float] | np.ndarray) -> float:
    array = np.asarray(values, dtype=np.float64)
    array = array[~np.isnan(array)]
    return float(array.mean()) if array.size else math.nan


def summarise(
    per_lang: dict[str, LanguageScores], settings: Sequence[str]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]], dict[str, object], dict[str, np.ndarray]]:
    """Turn per-query scores into (languages, aggregates, extra, per_query arrays) for a TaskResult."""
    languages: dict[str, dict[str, float]] = {}
    cross_settings: dict[tuple[str, str], tuple[float, float, int]] = {}
    per_query: dict[str, np.ndarray] = {}
    matrix_map: dict[str, dict[str, float]] = {}
    matrix_r1: dict[str, dict[str, float]] = {}
    matrix_n: dict[str, dict[str, int]] = {}
    for lang, scores in per_lang.items():
        row: dict[str, float] = {"n": float(len(scores.query_ids))}
        per_query[f"{lang}/query_ids"] = np.asarray(scores.query_ids)
        for key in (*_MONO_METRICS, *_MUL_METRICS):
            if key in scores.values:
                row[key] = _scale(key, _mean(scores.values[key]))
                per_query[f"{lang}/{key}"] = scores.values[key]
        matrix_map[lang], matrix_r1[lang], matrix_n[lang] = {}, {}, {}
        if "mono" in settings:
            matrix_map[lang][lang] = row["mono.map"]
            matrix_r1[lang][lang] = row["mono.r@1"]
            matrix_n[lang][lang] = len(scores.query_ids)
        if scores.cross_langs and scores.cross_map is not None and scores.cross_r1 is not None:
            per_lc_map, per_lc_r1, total = [], [], 0
            for j, other in enumerate(scores.cross_langs):
                count = int((~np.isnan(scores.cross_map[:, j])).sum())
                matrix_n[lang][other] = count
                if count == 0:
                    continue
                ap, r1 = _mean(scores.cross_map[:, j]), _mean(scores.cross_r1[:, j])
                cross_settings[(lang, other)] = (ap, r1, count)
                matrix_map[lang][other], matrix_r1[lang][other] = ap * 100, r1 * 100
                per_lc_map.append(ap)
                per_lc_r1.append(r1)
                total += count
            row["cross.map"] = _mean(per_lc_map) * 100
            row["cross.r@1"] = _mean(per_lc_r1) * 100
            row["cross.n"] = float(total)
            per_query[f"{lang}/cross.map"] = scores.values["cross.map"]
            per_query[f"{lang}/cross.r@1"] = scores.values["cross.r@1"]
            per_query[f"{lang}/cross.map_by_lang"] = scores.cross_map
            per_query[f"{lang}/cross.r@1_by_lang"] = scores.cross_r1
            per_query[f"{lang}/cross.langs"] = np.asarray(scores.cross_langs)
        languages[lang] = row

    all_langs = list(languages)
    aggregates = {"all": _macro(languages, cross_settings, all_langs), "micro": _micro(per_lang, all_langs)}
    seen = [lang for lang in all_langs if lang in PAPER_TRAIN_LANGS]
    unseen = [lang for lang in all_langs if lang not in PAPER_TRAIN_LANGS]
    if seen and unseen:
        aggregates["paper-seen"] = _macro(languages, cross_settings, seen)
        aggregates["paper-unseen"] = _macro(languages, cross_settings, unseen)
    extra: dict[str, object] = {
        "lang_matrix_map": matrix_map,
        "lang_matrix_r@1": matrix_r1,
        "lang_matrix_n": matrix_n,
        "lang_matrix_note": "rows: query language, columns: candidate language; diagonal = Mo., rest = Cr.",
    }
    return languages, aggregates, extra, per_query


def _macro(
    languages: dict[str, dict[str, float]],
    cross_settings: dict[tuple[str, str], tuple[float, float, int]],
    langs: Sequence[str],
) -> dict[str, float]:
    """Macro averages over ``langs``: per-language means, and Cr. over every (Lq, Lc) setting of those Lq."""
    agg: dict[str, float] = {"n_languages": float(len(langs))}
    for key in (*_MONO_METRICS, *_MUL_METRICS):
        vals = [languages[lang][key] for lang in langs if key in languages[lang]]
        if vals:
            agg[key] = _mean(vals)
    pairs = [v for (lq, _), v in cross_settings.items() if lq in langs]
    if pairs:
        agg["cross.map"] = _mean([ap for ap, _, _ in pairs]) * 100
        agg["cross.r@1"] = _mean([r1 for _, r1, _ in pairs]) * 100
        agg["cross.n_settings"] = float(len(pairs))
    return agg


def _micro(per_lang: dict[str, LanguageScores], langs: Sequence[str]) -> dict[str, float]:
    """Micro averages over every query of ``langs`` (LAReQA's and XTREME-R's averaging)."""
    agg: dict[str, float] = {"n": float(sum(len(per_lang[lang].query_ids) for lang in langs))}
    for key in (*_MONO_METRICS, *_MUL_METRICS):
        arrays = [per_lang[lang].values[key] for lang in langs if key in per_lang[lang].values]
        if arrays:
            agg[key] = _scale(key, _mean(np.concatenate(arrays)))
    maps = [per_lang[lang].cross_map for lang in langs if per_lang[lang].cross_map is not None]
    r1s = [per_lang[lang].cross_r1 for lang in langs if per_lang[lang].cross_r1 is not None]
    if maps:
        agg["cross.map"] = _mean(np.concatenate([m.ravel() for m in maps])) * 100  # type: ignore[union-attr]
        agg["cross.r@1"] = _mean(np.concatenate([m.ravel() for m in r1s])) * 100  # type: ignore[union-attr]
    return agg


def _checked_settings(settings: Sequence[str], candidate_text: str) -> tuple[str, ...]:
    """The settings in order, each once; unknown settings or candidate texts name the valid ones."""
    chosen = tuple(dict.fromkeys(settings))
    for setting in chosen:
        if setting not in SETTINGS:
            raise UnknownNameError("LAReQA setting", setting, SETTINGS)
    if not chosen:
        raise ValueError("no LAReQA setting chosen")
    if candidate_text not in CANDIDATE_TEXTS:
        raise UnknownNameError("candidate text", candidate_text, CANDIDATE_TEXTS)
    return chosen


def _description(data: LareqaData, candidate_text: str, timing: dict[str, float]) -> dict[str, object]:
    """What a result records beside its scores: pool sizes, averaging, metric definitions, timing."""
    return {
        "candidate_text": candidate_text,
        "n_candidates": {lang: s.stop - s.start for lang, s in data.candidate_slices().items()},
        "n_candidates_total": len(data.candidates),
        "n_questions": len(data.questions),
        "unanswered": data.unanswered,
        "primary_average": "macro over settings (query languages; Cr.: all Lq→Lc settings)",
        "metric_notes": {
            "mul.map@20": "XTREME-R normalisation: top-20 sum / min(|R_q|, 20)",
            "mul.ap@20_trec": "trec_eval map_cut_20 normalisation: top-20 sum / |R_q|",
            "mul.r@10": "|top-10 ∩ R_q| / |R_q| (max 10/11 on XQuAD-R)",
            "mul.rank_distance": "max - min rank of R_q in the full multilingual ranking; not x100",
            "cross": "per query language: mean over candidate languages Lc; queries whose item lacks Lc skipped",
        },
        "timing": timing,
    }


def _protocol(encoder: Encoder, data: LareqaData) -> dict[str, object]:
    """The fixed parts of the protocol a result records: prefixes, direction, tie rule, scores, files."""
    return {
        "query_prefix": encoder.query_prefix,
        "passage_prefix": encoder.passage_prefix,
        "direction": "question -> answer sentence",
        "tie_rule": TIE_RULE,
        "scores": "fp32 cosine, exact",
        "files": {lang: str(path) for lang, path in data.files.items()},
    }


def evaluate_lareqa(
    encoder: Encoder,
    name: Literal["xquad-r", "mlqa-r"] = "xquad-r",
    languages: Sequence[str] | None = None,
    candidate_text: CandidateText = "sentence+context",
    settings: Sequence[str] = SETTINGS,
    max_length: int | None = 512,
    articles: int | None = None,
    output_dir: str | Path | None = None,
    *,
    root: str | Path | None = None,
    batch_size: int = 32,
    block_size: int = 256,
    show_progress: bool = True,
) -> TaskResult:
    """Evaluate ``encoder`` on XQuAD-R or MLQA-R; main score ``mul.map`` (macro over query languages, x100).

    ``languages`` restricts queries *and* candidates: the Mul. pool and R_q then hold only those languages.
    ``articles`` keeps the first N articles of each language (quick runs; not comparable with full runs).
    With ``output_dir`` the result JSON and its per-query ``.npz`` are written there.
    """
    started = time.perf_counter()
    settings = _checked_settings(settings, candidate_text)
    data = load_lareqa(name, languages, root, articles=articles)
    loaded = time.perf_counter()
    counts = (len(data.questions), len(data.candidates), candidate_text, len(data.languages))
    log.info("%s: %d questions, %d candidates (%s), %d languages", name, *counts)
    query_vectors = _encode_unique(
        encoder, [q.text for q in data.questions], encoder.query_prefix, max_length, batch_size, show_progress
    )
    candidate_vectors = _encode_unique(
        encoder, candidate_texts(data, candidate_text), encoder.passage_prefix, max_length, batch_size, show_progress
    )
    encoded = time.perf_counter()
    per_lang = score_lareqa(query_vectors, candidate_vectors, data, settings, block_size)
    scored = time.perf_counter()
    langs, aggregates, extra, per_query = summarise(per_lang, settings)
    main_metric = MAIN_METRIC if "mul" in settings else ("mono.map" if "mono" in settings else "cross.map")
    timing = {
        "load_s": round(loaded - started, 3),
        "encode_s": round(encoded - loaded, 3),
        "score_s": round(scored - encoded, 3),
    }
    extra.update(_description(data, candidate_text, timing))
    config = {
        "name": name,
        "languages": list(data.languages),
        "candidate_text": candidate_text,
        "settings": list(settings),
        "max_length": max_length,
        "articles": articles,
        "batch_size": batch_size,
        **_protocol(encoder, data),
    }
    result = TaskResult(
        task=name,
        split="test",
        main_score=MainScore(metric=main_metric, value=aggregates["all"][main_metric]),
        languages=langs,
        aggregates=aggregates,
        extra=extra,
        model=dict(encoder.describe()),
        config=config,
        duration_s=round(time.perf_counter() - started, 3),
    )
    if output_dir is not None:
        result = write_result(output_dir, result, per_query)
        log.info("wrote %s", result_path(output_dir, name))
    seconds = (encoded - loaded, scored - encoded)
    log.info("%s %s = %.2f (encode %.1fs, score %.1fs)", name, main_metric, result.main_score.value, *seconds)
    return result
