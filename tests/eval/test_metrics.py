"""Metrics: hand-computed cases, the exact tie rule, and cross-checks against ir_measures (trec_eval)."""

from __future__ import annotations

import numpy as np
import pytest

from polyret.eval.metrics import (
    ap_at_k,
    ap_at_k_batch,
    average_precision,
    average_precision_batch,
    best_f1_threshold,
    blocked_relevant_ranks,
    ir_measures_scores,
    matrix_relevant_ranks,
    ndcg_at_k,
    precision_recall_f1,
    rank_distance,
    rank_distance_batch,
    ranks_to_run_scores,
    recall_at_k,
    recall_at_k_batch,
    reciprocal_rank,
    relevant_ranks,
    score_block,
    success_at_k,
    top1_accuracy,
    weighted_precision_recall_f1,
)


def _reference_ranks(scores: np.ndarray) -> np.ndarray:
    """All 1-based ranks by a stable sort on descending score (ties: ascending index)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


# ----------------------------------------------------------------------------------------- ranks
def test_relevant_ranks_hand_case_with_ties():
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.5], dtype=np.float32)
    # order: 1 (0.9), 0, 2, 4 (ties by index), 3
    assert relevant_ranks(scores, [0, 1, 2, 3, 4]).tolist() == [2, 1, 3, 5, 4]
    assert relevant_ranks(scores, [4, 2]).tolist() == [4, 3]
    assert relevant_ranks(scores, []).tolist() == []


def test_relevant_ranks_all_equal_scores_follow_index():
    scores = np.zeros(6, dtype=np.float32)
    assert relevant_ranks(scores, [5, 0, 3]).tolist() == [6, 1, 4]


@pytest.mark.parametrize("seed", range(5))
def test_relevant_ranks_match_stable_sort(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 7, size=200).astype(np.float32) / 7  # many ties
    relevant = rng.choice(200, size=20, replace=False)
    assert relevant_ranks(scores, relevant).tolist() == _reference_ranks(scores)[relevant].tolist()


def test_relevant_ranks_rejects_bad_input():
    with pytest.raises(ValueError):
        relevant_ranks(np.array([0.1, np.nan]), [0])
    with pytest.raises(ValueError):
        relevant_ranks(np.array([0.1, 0.2]), [2])
    with pytest.raises(ValueError):
        relevant_ranks(np.zeros((2, 2)), [0])


def test_matrix_and_blocked_ranks_agree_with_per_row(monkeypatch):
    import polyret.eval.metrics as metrics

    rng = np.random.default_rng(1)
    queries = rng.normal(size=(37, 8)).astype(np.float32)
    candidates = np.round(rng.normal(size=(53, 8)), 1).astype(np.float32)
    candidates[10] = candidates[3]  # exact duplicate candidates tie
    relevant = [rng.choice(53, size=rng.integers(0, 5), replace=False) for _ in range(37)]
    relevant[0] = np.array([3, 10])
    full = score_block(queries, candidates)
    expected = [_reference_ranks(full[i])[relevant[i]] for i in range(37)]
    monkeypatch.setattr(metrics, "_COMPARE_BUDGET", 100)  # force many small comparison chunks
    got = matrix_relevant_ranks(full, relevant)
    blocked = blocked_relevant_ranks(queries, candidates, relevant, block_size=5)
    for e, g, b in zip(expected, got, blocked, strict=True):
        assert g.tolist() == e.tolist()
        assert b.tolist() == e.tolist()
    assert got[0][1] == got[0][0] + 1  # duplicates get consecutive ranks, the lower index first


def test_blocked_ranks_with_column_slice():
    rng = np.random.default_rng(2)
    queries = rng.normal(size=(6, 4)).astype(np.float32)
    candidates = rng.normal(size=(20, 4)).astype(np.float32)
    relevant = [np.array([i % 5]) for i in range(6)]
    got = blocked_relevant_ranks(queries, candidates, relevant, block_size=4, columns=slice(10, 15))
    pool = score_block(queries, candidates[10:15])
    for i in range(6):
        assert got[i].tolist() == _reference_ranks(pool[i])[relevant[i]].tolist()


# ------------------------------------------------------------------------------ ranking metrics
def test_average_precision_hand_cases():
    assert average_precision([1], 1) == 1.0
    assert average_precision([4], 1) == 0.25  # one relevant: AP = RR
    assert average_precision([3, 1], 2) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert average_precision([2, 5, 9], 4) == pytest.approx((1 / 2 + 2 / 5 + 3 / 9) / 4)  # one never ranked
    with pytest.raises(ValueError):
        average_precision([1], 0)


def test_ap_at_k_normalisations():
    # 11 relevant (XQuAD-R Mul.), ranks 1, 2, 5, 30 ...; k = 10
    ranks = [1, 2, 5, 30, 40, 50, 60, 70, 80, 90, 100]
    top = 1 / 1 + 2 / 2 + 3 / 5
    assert ap_at_k(ranks, 11, 10, "xtreme-r") == pytest.approx(top / 10)
    assert ap_at_k(ranks, 11, 10, "trec") == pytest.approx(top / 11)
    # |R| <= k: both agree
    assert ap_at_k([1, 3], 2, 20, "xtreme-r") == ap_at_k([1, 3], 2, 20, "trec") == average_precision([1, 3], 2)
    with pytest.raises(ValueError):
        ap_at_k([1], 1, 10, "other")  # type: ignore[arg-type]


def test_recall_success_rr_rd_ndcg_hand_cases():
    assert recall_at_k([1, 4, 12], 3, 10) == pytest.approx(2 / 3)
    assert recall_at_k([1, 4, 12], 4, 1) == 0.25
    assert success_at_k([3, 7], 3) == 1.0 and success_at_k([4], 3) == 0.0 and success_at_k([], 3) == 0.0
    assert reciprocal_rank([5, 2]) == 0.5 and reciprocal_rank([]) == 0.0
    assert rank_distance([7, 3, 12]) == 9.0 and rank_distance([4]) == 0.0
    # relevant at 1 and 3 of 2: DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    assert ndcg_at_k([1, 3], 2, 10) == pytest.approx(1.5 / (1 + 1 / np.log2(3)))
    assert ndcg_at_k([11], 1, 10) == 0.0


def test_top1_accuracy_and_prf():
    assert top1_accuracy(np.array([0, 1, 5, 3]), np.arange(4)) == 0.75
    with pytest.raises(ValueError):
        top1_accuracy(np.array([0]), np.arange(2))
    predicted = {("a", "x"), ("b", "y"), ("c", "z")}
    p, r, f = precision_recall_f1(predicted, {("a", "x"), ("b", "y"), ("d", "w"), ("e", "v")})
    assert (p, r) == (pytest.approx(2 / 3), 0.5)
    assert f == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert precision_recall_f1(set(), {1}) == (0.0, 0.0, 0.0)


def test_weighted_prf_hand_case():
    # gold [0, 1, 2, 3], predicted [0, 2, 2, 0]: labels 0 and 2 right, each chosen twice; 1 and 3 never chosen.
    precision, recall, f1 = weighted_precision_recall_f1(np.array([0, 2, 2, 0]), np.arange(4))
    assert (precision, recall, f1) == pytest.approx((0.25, 0.5, 1 / 3))
    # a label only ever predicted (7) weighs nothing; a gold label seen twice (5) weighs 2/4
    precision, recall, f1 = weighted_precision_recall_f1(np.array([5, 7, 5, 1]), np.array([5, 5, 1, 1]))
    # label 5: tp 1, chosen 2, support 2 -> P 1/2, R 1/2, F1 2/4; label 1: tp 1, chosen 1, support 2 -> P 1, R 1/2
    assert (precision, recall, f1) == pytest.approx(((2 * 0.5 + 2 * 1) / 4, 0.5, (2 * 0.5 + 2 * 2 / 3) / 4))
    with pytest.raises(ValueError):
        weighted_precision_recall_f1(np.array([0]), np.arange(2))


@pytest.mark.parametrize("seed", range(5))
def test_weighted_prf_matches_scikit_learn(seed):
    """MTEB computes these with scikit-learn's weighted averages (BitextMiningEvaluator._compute_metrics)."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference implementation")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    gold = np.arange(n) if seed % 2 == 0 else rng.integers(0, n, size=n)  # identity (Tatoeba) or repeated labels
    predicted = np.where(rng.random(n) < 0.6, gold, rng.integers(0, n + 5, size=n))
    expected = [
        score(gold, predicted, average="weighted", zero_division=0)
        for score in (sklearn_metrics.precision_score, sklearn_metrics.recall_score, sklearn_metrics.f1_score)
    ]
    assert weighted_precision_recall_f1(predicted, gold) == pytest.approx(tuple(expected), abs=1e-12)


def test_best_f1_threshold_hand_case():
    scores = np.array([0.4, 0.9, 0.8, 0.5, 0.8])
    correct = np.array([False, True, True, True, False])
    # sorted: .9 T, .8 T, .8 F, .5 T, .4 F; n=2 cannot be cut (tie); best n=4: P=3/4, R=1 -> F1 6/7
    threshold, f1 = best_f1_threshold(scores, correct, n_gold=3)
    assert threshold == pytest.approx(0.45) and f1 == pytest.approx(6 / 7)
    kept = scores >= threshold
    assert precision_recall_f1(
        set(np.flatnonzero(kept & correct)) | set(np.flatnonzero(kept & ~correct)), set(np.flatnonzero(correct))
    )[2] == pytest.approx(f1)


def test_best_f1_threshold_edges():
    threshold, f1 = best_f1_threshold(np.array([0.9, 0.7]), np.array([True, True]), n_gold=2)
    assert (threshold, f1) == (0.7, 1.0)  # best cut is the last candidate
    threshold, f1 = best_f1_threshold(np.array([0.9, 0.7]), np.array([False, False]), n_gold=2)
    assert f1 == 0.0 and threshold > 0.9
    assert best_f1_threshold(np.array([]), np.array([], dtype=bool), 1) == (float("inf"), 0.0)


def test_best_f1_threshold_matches_brute_force():
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(60), 2)
    correct = rng.random(60) < 0.4
    n_gold = int(correct.sum()) + 5
    threshold, f1 = best_f1_threshold(scores, correct, n_gold)
    brute = max(
        (2 * c / (k + n_gold))
        for t in np.unique(scores)
        for k, c in [((scores >= t).sum(), (correct & (scores >= t)).sum())]
    )
    assert f1 == pytest.approx(brute)
    kept = scores >= threshold
    assert 2 * (kept & correct).sum() / (kept.sum() + n_gold) == pytest.approx(f1)


# --------------------------------------------------------------------------- ir_measures cross-check
def test_ir_measures_scores_hand_case():
    run = {"q1": {"a": 0.5, "b": 0.9, "c": 0.5, "d": 0.1}, "q2": {}, "q3": {"a": 1.0}}
    qrels = {"q1": {"a": 1, "d": 1, "x": 0}, "q2": {"a": 1}, "q3": {"a": 0}, "q4": {"b": 1}}
    out = ir_measures_scores(run, qrels, ("nDCG@10", "R@100", "AP", "AP@2"))
    assert set(out["AP"]) == {"q1", "q2", "q4"}  # q3 has no relevant document
    assert out["AP"]["q1"] == pytest.approx((1 / 2 + 2 / 4) / 2)  # ranks b, a, c, d
    assert out["AP@2"]["q1"] == pytest.approx(0.5 / 2)
    assert out["nDCG@10"]["q1"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(5)) / (1 + 1 / np.log2(3)))
    assert out["R@100"]["q1"] == 1.0
    assert out["AP"]["q2"] == out["AP"]["q4"] == 0.0  # empty or missing run scores 0


def test_ir_measures_scores_insertion_tie_break():
    run = {"q": {"z": 1.0, "a": 1.0}}
    qrels = {"q": {"z": 1}}
    assert ir_measures_scores(run, qrels, ("AP",))["AP"]["q"] == 1.0  # z inserted first ranks first
    assert ir_measures_scores(run, qrels, ("AP",), tie_break="trec")["AP"]["q"] in (0.5, 1.0)
    assert ir_measures_scores({}, {}, ("AP",)) == {"AP": {}}


@pytest.mark.parametrize("seed", range(4))
def test_metrics_match_ir_measures_on_random_rankings_with_ties(seed):
    rng = np.random.default_rng(seed)
    n_docs, n_queries = 120, 25
    scores = rng.integers(0, 15, size=(n_queries, n_docs)).astype(np.float32)  # heavy ties
    docids = [f"d{j:03d}" for j in range(n_docs)]
    relevant = [rng.choice(n_docs, size=rng.integers(1, 15), replace=False) for _ in range(n_queries)]
    all_ranks = np.stack([_reference_ranks(row) for row in scores])
    run = {f"q{i}": dict(zip(docids, ranks_to_run_scores(all_ranks[i]), strict=True)) for i in range(n_queries)}
    qrels = {f"q{i}": {docids[j]: 1 for j in relevant[i]} for i in range(n_queries)}
    measures = ("AP", "AP@10", "R@10", "R@50", "nDCG@10", "RR")
    trec = ir_measures_scores(run, qrels, measures, tie_break="trec")
    ours_ranks = matrix_relevant_ranks(scores, relevant)
    # insertion tie-break on raw scores (docids inserted in canonical order) must equal N - rank scores
    raw_run = {f"q{i}": dict(zip(docids, scores[i].tolist(), strict=True)) for i in range(n_queries)}
    assert ir_measures_scores(raw_run, qrels, measures) == trec
    for i in range(n_queries):
        q, ranks, n_rel = f"q{i}", ours_ranks[i], len(relevant[i])
        assert average_precision(ranks, n_rel) == pytest.approx(trec["AP"][q], abs=1e-4)
        assert ap_at_k(ranks, n_rel, 10, "trec") == pytest.approx(trec["AP@10"][q], abs=1e-4)
        assert recall_at_k(ranks, n_rel, 10) == pytest.approx(trec["R@10"][q], abs=1e-4)
        assert recall_at_k(ranks, n_rel, 50) == pytest.approx(trec["R@50"][q], abs=1e-4)
        assert ndcg_at_k(ranks, n_rel, 10) == pytest.approx(trec["nDCG@10"][q], abs=1e-4)
        assert reciprocal_rank(ranks) == pytest.approx(trec["RR"][q], abs=1e-4)


def test_batched_metrics_equal_scalar_ones():
    rng = np.random.default_rng(5)
    ranks_list, n_relevant = [], []
    for _ in range(200):
        n_rel = int(rng.integers(1, 12))
        found = int(rng.integers(0, n_rel + 1))
        ranks_list.append(rng.choice(np.arange(1, 60), size=found, replace=False))
        n_relevant.append(n_rel)
    np.testing.assert_allclose(
        average_precision_batch(ranks_list, n_relevant),
        [average_precision(r, n) for r, n in zip(ranks_list, n_relevant, strict=True)],
    )
    for norm in ("xtreme-r", "trec"):
        np.testing.assert_allclose(
            ap_at_k_batch(ranks_list, n_relevant, 10, norm),
            [ap_at_k(r, n, 10, norm) for r, n in zip(ranks_list, n_relevant, strict=True)],
        )
    np.testing.assert_allclose(
        recall_at_k_batch(ranks_list, n_relevant, 10),
        [recall_at_k(r, n, 10) for r, n in zip(ranks_list, n_relevant, strict=True)],
    )
    expected_rd = [rank_distance(r) if len(r) else np.nan for r in ranks_list]
    np.testing.assert_allclose(rank_distance_batch(ranks_list), expected_rd)
    assert average_precision_batch([np.array([2])], 1).tolist() == [0.5]
    with pytest.raises(ValueError):
        average_precision_batch([np.array([1, 2])], 1)
    with pytest.raises(ValueError):
        recall_at_k_batch([np.array([1])], [0], 1)
