"""Ranking, classification and retrieval metrics shared by every benchmark (PROTOCOLS §3).

Conventions:

- Inputs are numpy arrays; outputs are floats (or arrays) in [0, 1]. Callers multiply by 100 when they
  write results.
- Ranks are **1-based** and exact over fp32 scores. Ties are broken by ascending candidate index (the
  canonical order), so for candidate ``d``::

      rank(d) = #{j : s_j > s_d} + #{j < d : s_j == s_d} + 1

  This is the rank ``d`` gets from a stable sort by descending score.
- Ranking metrics take the ranks of the relevant candidates (any order) plus ``n_relevant`` (``|R_q|``),
  so a relevant candidate that was not ranked at all (e.g. outside a cut-off) simply has no rank.
- To cross-check with trec_eval / ir_measures, which break ties by document id, write run scores as
  ``N - rank`` (:func:`ranks_to_run_scores`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

import numpy as np

__all__ = [
    "ap_at_k",
    "ap_at_k_batch",
    "average_precision",
    "average_precision_batch",
    "best_f1_threshold",
    "blocked_relevant_ranks",
    "ir_measures_scores",
    "matrix_relevant_ranks",
    "ndcg_at_k",
    "precision_recall_f1",
    "rank_distance",
    "rank_distance_batch",
    "ranks_to_run_scores",
    "recall_at_k",
    "recall_at_k_batch",
    "reciprocal_rank",
    "relevant_ranks",
    "score_block",
    "success_at_k",
    "top1_accuracy",
]

APNormalization = Literal["xtreme-r", "trec"]

# Comparisons of one (relevant pair x candidates) chunk are bounded to about this many booleans.
_COMPARE_BUDGET = 1 << 23


# --------------------------------------------------------------------------------------------- ranks
def _as_index_array(relevant: Iterable[int] | np.ndarray) -> np.ndarray:
    array = np.asarray(list(relevant) if not isinstance(relevant, np.ndarray) else relevant, dtype=np.int64)
    return array.reshape(-1)


def relevant_ranks(scores: np.ndarray, relevant: Sequence[int] | np.ndarray) -> np.ndarray:
    """1-based ranks of the ``relevant`` candidates in ``scores`` (shape ``(n_cand,)``), in the given order.

    Exact tie rule: ``rank(d) = #{s > s_d} + #{s == s_d, j < d} + 1``.

    >>> relevant_ranks(np.array([0.5, 0.9, 0.5, 0.1]), [2, 0, 3])
    array([3, 2, 4])
    """
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {scores.shape}")
    rel = _as_index_array(relevant)
    return matrix_relevant_ranks(scores[None, :], [rel])[0]


def matrix_relevant_ranks(scores: np.ndarray, relevant: Sequence[Sequence[int] | np.ndarray]) -> list[np.ndarray]:
    """Ranks of each row's relevant columns in a materialised ``(n_queries, n_cand)`` score block.

    ``relevant[i]`` holds column indexes for row ``i``; returns one int64 array per row, same order.
    Work is chunked so at most about 8M comparisons are held at once.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D, got shape {scores.shape}")
    n_rows, n_cand = scores.shape
    if len(relevant) != n_rows:
        raise ValueError(f"{len(relevant)} relevant lists for {n_rows} score rows")
    rel_arrays = [_as_index_array(r) for r in relevant]
    lengths = np.array([len(r) for r in rel_arrays], dtype=np.int64)
    if lengths.sum() == 0:
        return [np.zeros(0, dtype=np.int64) for _ in rel_arrays]
    cols = np.concatenate(rel_arrays)
    if cols.min() < 0 or cols.max() >= n_cand:
        raise ValueError(f"relevant index out of range [0, {n_cand})")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    # Pad the ragged lists into a (n_rows, width) table so each chunk compares by broadcasting, without
    # copying score rows: rank = #{s > t} + 1, then a rare exact fix-up for pairs whose score is tied.
    width = int(lengths.max())
    valid = np.arange(width)[None, :] < lengths[:, None]
    table = np.zeros((n_rows, width), dtype=np.int64)
    table[valid] = cols
    targets = np.take_along_axis(scores, table, axis=1)
    greater = np.empty((n_rows, width), dtype=np.int64)
    equal = np.empty((n_rows, width), dtype=np.int64)
    chunk = max(1, _COMPARE_BUDGET // max(n_cand * width, 1))
    for start in range(0, n_rows, chunk):
        block = scores[start : start + chunk, None, :]
        target = targets[start : start + chunk, :, None]
        greater[start : start + chunk] = np.count_nonzero(block > target, axis=2)
        equal[start : start + chunk] = np.count_nonzero(block == target, axis=2)
    ranks = greater + 1
    tie_rows, tie_slots = np.nonzero(valid & (equal > 1))
    for row, slot in zip(tie_rows.tolist(), tie_slots.tolist(), strict=True):
        column = table[row, slot]
        ranks[row, slot] += int(np.count_nonzero(scores[row, :column] == targets[row, slot]))
    flat = ranks[valid]
    return list(np.split(flat, np.cumsum(lengths)[:-1]))


def blocked_relevant_ranks(
    queries: np.ndarray,
    candidates: np.ndarray,
    relevant: Sequence[Sequence[int] | np.ndarray],
    *,
    block_size: int = 512,
    columns: slice | None = None,
) -> list[np.ndarray]:
    """Ranks of relevant candidates for every query, scoring ``queries @ candidates.T`` one block at a time.

    Only one ``(block_size, n_cand)`` score block exists at a time. ``columns`` restricts the pool to a
    contiguous slice of candidates (ranks and ``relevant`` indexes are then relative to the slice start).
    Scores come from :func:`score_block` (fp32 cosine for L2-normalised inputs).
    """
    pool = np.asarray(candidates, dtype=np.float64)
    if columns is not None:
        pool = pool[columns]
    if len(relevant) != len(queries):
        raise ValueError(f"{len(relevant)} relevant lists for {len(queries)} queries")
    out: list[np.ndarray] = []
    for start in range(0, len(queries), block_size):
        block = score_block(queries[start : start + block_size], pool)
        out.extend(matrix_relevant_ranks(block, relevant[start : start + block_size]))
    return out


def score_block(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """fp32 dot-product scores ``queries @ candidates.T``, accumulated in float64 and rounded to float32.

    A float32 BLAS product can give two identical candidate vectors different last bits depending on
    where they fall in the kernel's tiles, which would make the tie rule depend on block layout. Rounding
    a float64 product makes identical candidates score identically, so ties follow the canonical index.
    """
    q = np.asarray(queries, dtype=np.float64)
    c = np.asarray(candidates, dtype=np.float64)
    return (q @ c.T).astype(np.float32)


def ranks_to_run_scores(ranks: np.ndarray) -> np.ndarray:
    """Turn 1-based ranks into scores ``N - rank`` so trec_eval orders exactly like our tie rule."""
    ranks = np.asarray(ranks)
    return (len(ranks) - ranks).astype(np.float64)


# ----------------------------------------------------------------------------------- ranking metrics
def _sorted_ranks(ranks: Sequence[int] | np.ndarray, n_relevant: int) -> np.ndarray:
    if n_relevant <= 0:
        raise ValueError("n_relevant must be positive; queries without relevant candidates are excluded")
    array = np.sort(np.asarray(ranks, dtype=np.int64).reshape(-1))
    if len(array) > n_relevant:
        raise ValueError(f"{len(array)} ranks for {n_relevant} relevant candidates")
    if len(array) and array[0] < 1:
        raise ValueError("ranks are 1-based")
    return array


def average_precision(ranks_of_relevant: Sequence[int] | np.ndarray, n_relevant: int) -> float:
    """AP = (1/|R|) Σ_{relevant at rank r} P@r over the full ranking (unranked relevant items add 0).

    >>> average_precision([1, 3], 2)  # (1/1 + 2/3) / 2
    0.8333333333333333
    """
    ranks = _sorted_ranks(ranks_of_relevant, n_relevant)
    hits = np.arange(1, len(ranks) + 1)
    return float((hits / ranks).sum() / n_relevant)


def ap_at_k(
    ranks: Sequence[int] | np.ndarray, n_relevant: int, k: int, normalization: APNormalization = "xtreme-r"
) -> float:
    """AP cut at rank k: Σ_{relevant at rank r ≤ k} P@r, divided by min(|R|, k) (``xtreme-r``) or |R| (``trec``).

    ``trec`` equals trec_eval ``map_cut_k`` / ir_measures ``AP@k``; the two agree whenever |R| ≤ k.
    """
    if k <= 0:
        raise ValueError("k must be positive")
    sorted_ranks = _sorted_ranks(ranks, n_relevant)
    hits = np.arange(1, len(sorted_ranks) + 1)
    inside = sorted_ranks <= k
    total = float((hits[inside] / sorted_ranks[inside]).sum())
    if normalization == "xtreme-r":
        return total / min(n_relevant, k)
    if normalization == "trec":
        return total / n_relevant
    raise ValueError(f"unknown AP@k normalization {normalization!r}; valid: 'xtreme-r', 'trec'")


def recall_at_k(ranks: Sequence[int] | np.ndarray, n_relevant: int, k: int) -> float:
    """R@k = |top-k ∩ R| / |R|."""
    sorted_ranks = _sorted_ranks(ranks, n_relevant)
    return float((sorted_ranks <= k).sum() / n_relevant)


def success_at_k(ranks: Sequence[int] | np.ndarray, k: int) -> float:
    """1 if any relevant candidate is in the top k, else 0."""
    array = np.asarray(ranks).reshape(-1)
    return float(len(array) > 0 and array.min() <= k)


def reciprocal_rank(ranks: Sequence[int] | np.ndarray) -> float:
    """1 / (best rank of a relevant candidate); 0 when none is ranked."""
    array = np.asarray(ranks).reshape(-1)
    return 0.0 if len(array) == 0 else float(1.0 / array.min())


def rank_distance(ranks: Sequence[int] | np.ndarray) -> float:
    """max rank − min rank of a query's relevant candidates (LAReQA RD; lower is better)."""
    array = np.asarray(ranks).reshape(-1)
    if len(array) == 0:
        raise ValueError("rank distance of an empty set of ranks")
    return float(array.max() - array.min())


def ndcg_at_k(ranks: Sequence[int] | np.ndarray, n_relevant: int, k: int) -> float:
    """Binary-relevance nDCG@k = DCG@k / IDCG@k with DCG = Σ_{r ≤ k} 1/log2(r+1) (trec_eval ``ndcg_cut``)."""
    sorted_ranks = _sorted_ranks(ranks, n_relevant)
    inside = sorted_ranks[sorted_ranks <= k]
    dcg = float((1.0 / np.log2(inside + 1.0)).sum())
    ideal = float((1.0 / np.log2(np.arange(1, min(n_relevant, k) + 1) + 1.0)).sum())
    return dcg / ideal


# ------------------------------------------------------------------------- batched ranking metrics
# Vectorised forms of the metrics above for many queries at once: ``ranks_list[i]`` holds query i's
# relevant ranks, ``n_relevant`` is one count per query (or one for all). Each returns one value per query
# and equals the scalar function query by query (tested).
def _grouped(ranks_list: Sequence[np.ndarray], n_relevant: int | Sequence[int] | np.ndarray):
    lengths = np.fromiter((len(r) for r in ranks_list), dtype=np.int64, count=len(ranks_list))
    n_rel = np.broadcast_to(np.asarray(n_relevant, dtype=np.int64), lengths.shape).astype(np.float64)
    if (n_rel <= 0).any():
        raise ValueError("n_relevant must be positive; queries without relevant candidates are excluded")
    if (lengths > n_rel).any():
        raise ValueError("more ranks than relevant candidates for some query")
    group = np.repeat(np.arange(len(lengths)), lengths)
    flat = (
        np.concatenate([np.asarray(r, dtype=np.int64).reshape(-1) for r in ranks_list])
        if lengths.sum()
        else np.zeros(0, dtype=np.int64)
    )
    if flat.size and flat.min() < 1:
        raise ValueError("ranks are 1-based")
    flat = flat[np.lexsort((flat, group))]
    starts = np.cumsum(lengths) - lengths
    position = np.arange(len(flat)) - starts[group] + 1  # hits so far, within each query
    return group, flat, position, lengths, n_rel


def average_precision_batch(
    ranks_list: Sequence[np.ndarray], n_relevant: int | Sequence[int] | np.ndarray
) -> np.ndarray:
    """:func:`average_precision` for every query."""
    group, flat, position, lengths, n_rel = _grouped(ranks_list, n_relevant)
    return np.bincount(group, weights=position / flat, minlength=len(lengths)) / n_rel


def ap_at_k_batch(
    ranks_list: Sequence[np.ndarray],
    n_relevant: int | Sequence[int] | np.ndarray,
    k: int,
    normalization: APNormalization = "xtreme-r",
) -> np.ndarray:
    """:func:`ap_at_k` for every query."""
    if k <= 0:
        raise ValueError("k must be positive")
    group, flat, position, lengths, n_rel = _grouped(ranks_list, n_relevant)
    total = np.bincount(group, weights=np.where(flat <= k, position / flat, 0.0), minlength=len(lengths))
    if normalization == "xtreme-r":
        return total / np.minimum(n_rel, k)
    if normalization == "trec":
        return total / n_rel
    raise ValueError(f"unknown AP@k normalization {normalization!r}; valid: 'xtreme-r', 'trec'")


def recall_at_k_batch(
    ranks_list: Sequence[np.ndarray], n_relevant: int | Sequence[int] | np.ndarray, k: int
) -> np.ndarray:
    """:func:`recall_at_k` for every query."""
    group, flat, _, lengths, n_rel = _grouped(ranks_list, n_relevant)
    return np.bincount(group, weights=(flat <= k).astype(np.float64), minlength=len(lengths)) / n_rel


def rank_distance_batch(ranks_list: Sequence[np.ndarray]) -> np.ndarray:
    """:func:`rank_distance` for every query (NaN for a query without ranks)."""
    lengths = np.fromiter((len(r) for r in ranks_list), dtype=np.int64, count=len(ranks_list))
    out = np.full(len(lengths), np.nan)
    nonempty = lengths > 0
    if nonempty.any():
        flat = np.concatenate([np.asarray(r, dtype=np.int64).reshape(-1) for r in ranks_list])
        starts = (np.cumsum(lengths) - lengths)[nonempty]
        out[nonempty] = np.maximum.reduceat(flat, starts) - np.minimum.reduceat(flat, starts)
    return out


# ------------------------------------------------------------------------------ classification metrics
def top1_accuracy(predicted: np.ndarray, gold: np.ndarray) -> float:
    """Share of positions where ``predicted == gold`` (Tatoeba, UDHR P@1)."""
    predicted, gold = np.asarray(predicted).reshape(-1), np.asarray(gold).reshape(-1)
    if predicted.shape != gold.shape:
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} gold labels")
    if len(gold) == 0:
        raise ValueError("accuracy of an empty set")
    return float((predicted == gold).mean())


def precision_recall_f1(predicted: set, gold: set) -> tuple[float, float, float]:
    """P = |pred ∩ gold|/|pred|, R = |pred ∩ gold|/|gold|, F1 = 2PR/(P+R); empty denominators give 0."""
    predicted, gold = set(predicted), set(gold)
    correct = len(predicted & gold)
    precision = correct / len(predicted) if predicted else 0.0
    recall = correct / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def best_f1_threshold(scores: np.ndarray, correct: np.ndarray, n_gold: int) -> tuple[float, float]:
    """Tune a score threshold for F1 (PROTOCOLS §3.3 step 4). Returns ``(threshold, best_f1)``.

    Candidates are sorted by descending score (ties by index); for each cut-off n, P = tp(n)/n and
    R = tp(n)/n_gold. The best n (first maximum) gives ``threshold = (s_n + s_{n+1}) / 2``, or ``s_N``
    when n = N; keeping candidates with ``score >= threshold`` then keeps exactly the top n. Only
    cut-offs a threshold can realise are considered: n where ``s_n > s_{n+1}`` (tied scores cannot be
    split), or n = N. When no cut-off has F1 > 0 the threshold lies just above the highest score.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=bool).reshape(-1)
    if scores.shape != correct.shape:
        raise ValueError(f"{len(scores)} scores for {len(correct)} correctness flags")
    if n_gold <= 0:
        raise ValueError("n_gold must be positive")
    if len(scores) == 0:
        return float("inf"), 0.0
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_correct = scores[order], correct[order]
    tp = np.cumsum(sorted_correct)
    n = np.arange(1, len(scores) + 1)
    precision = tp / n
    recall = tp / n_gold
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(tp > 0, 2 * precision * recall / (precision + recall), 0.0)
    realisable = np.ones(len(scores), dtype=bool)
    realisable[:-1] = sorted_scores[:-1] > sorted_scores[1:]
    f1 = np.where(realisable, f1, -1.0)
    best = int(np.argmax(f1))
    best_f1 = float(f1[best])
    if best_f1 <= 0:
        return float(np.nextafter(sorted_scores[0], np.inf)), 0.0
    if best == len(scores) - 1:
        return float(sorted_scores[best]), best_f1
    return float((sorted_scores[best] + sorted_scores[best + 1]) / 2), best_f1


# ---------------------------------------------------------------------------------- ir_measures bridge
def _tie_broken(docs: Mapping[str, float]) -> dict[str, float]:
    """Rewrite scores as N - rank, ranking by descending score with ties by insertion order."""
    ids = list(docs)
    values = np.fromiter((float(docs[d]) for d in ids), dtype=np.float64, count=len(ids))
    order = np.argsort(-values, kind="stable")
    n = len(ids)
    return {ids[j]: float(n - position) for position, j in enumerate(order)}


def ir_measures_scores(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    measures: Sequence[str] = ("nDCG@10", "R@100"),
    *,
    tie_break: Literal["insertion", "trec"] = "insertion",
) -> dict[str, dict[str, float]]:
    """Per-query values of trec_eval measures (via ir_measures) for ``run`` against ``qrels``.

    Returns ``{measure: {qid: value}}`` with the measure names as given. Queries whose qrels hold no
    relevant document (rel > 0) are excluded (PROTOCOLS §3.4); a query with relevant documents but no
    (or an empty) run scores 0. ``tie_break="insertion"`` (default) breaks score ties by each query's
    dict order (pass documents in canonical order); ``"trec"`` keeps trec_eval's own tie rule (docid).
    """
    # ir_measures loads only when this runs, not when metrics is imported
    import ir_measures

    if tie_break not in ("insertion", "trec"):
        raise ValueError(f"unknown tie_break {tie_break!r}; valid: 'insertion', 'trec'")
    parsed = {name: ir_measures.parse_measure(name) for name in measures}
    judged = {
        str(qid): {str(doc): int(rel) for doc, rel in docs.items()}
        for qid, docs in qrels.items()
        if any(int(rel) > 0 for rel in docs.values())
    }
    out: dict[str, dict[str, float]] = {name: dict.fromkeys(judged, 0.0) for name in measures}
    if not judged:
        return out
    prepare: Callable[[Mapping[str, float]], Mapping[str, float]] = (
        _tie_broken if tie_break == "insertion" else (lambda docs: docs)
    )
    run_dict = {
        str(qid): {str(doc): float(score) for doc, score in prepare(docs).items()}
        for qid, docs in run.items()
        if str(qid) in judged and len(docs) > 0
    }
    if not run_dict:
        return out
    by_measure = {measure: name for name, measure in parsed.items()}
    for metric in ir_measures.iter_calc(list(parsed.values()), judged, run_dict):
        name = by_measure.get(metric.measure)
        if name is not None and metric.query_id in judged:
            out[name][metric.query_id] = float(metric.value)
    return out
