"""Exact k-NN: agreement with brute force, and the tie rule (ascending key index) faiss alone does not give."""

from __future__ import annotations

import numpy as np
import pytest

from polyret.mining.knn import exact_topk, merge_topk


def brute_force(queries: np.ndarray, keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    c = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    scores = q.astype(np.float64) @ c.astype(np.float64).T
    order = np.lexsort((np.broadcast_to(np.arange(len(keys)), scores.shape), -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def test_matches_brute_force_on_random_data() -> None:
    rng = np.random.default_rng(0)
    queries, keys = rng.standard_normal((300, 24)), rng.standard_normal((500, 24))
    scores, indices = exact_topk(queries, keys, k=7, block=64)
    want_scores, want_indices = brute_force(queries, keys, 7)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_identical_keys_come_back_in_ascending_index_order() -> None:
    """faiss 1.15 alone returns a tie group in descending index order; exact_topk sorts it."""
    keys = np.tile(np.eye(4, dtype=np.float32)[:1], (6, 1))
    _, ours = exact_topk(keys[:1], keys, k=3)
    assert ours[0].tolist() == [0, 1, 2]


@pytest.mark.parametrize("n_queries", [1, 40])  # faiss uses a different code path below 20 queries
def test_ties_go_to_the_lowest_key_index(n_queries: int) -> None:
    rng = np.random.default_rng(1)
    target = rng.standard_normal(16).astype(np.float32)
    keys = rng.standard_normal((30, 16)).astype(np.float32)
    duplicates = [25, 3, 17, 9, 28, 11]  # six identical copies of the best key, scattered
    keys[duplicates] = target
    queries = np.tile(target, (n_queries, 1))
    # the tie group (6) is larger than k + 1, so the boundary fix-up must re-collect it
    for k in (1, 2, 4):
        _, indices = exact_topk(queries, keys, k=k)
        assert (indices == np.array(sorted(duplicates)[:k])).all()
    _, indices = exact_topk(queries, keys, k=8)
    assert indices[0, :6].tolist() == sorted(duplicates)
    assert indices[0, 6:].tolist() == brute_force(queries[:1], keys, 8)[1][0, 6:].tolist()


def test_k_larger_than_keys_pads_with_minus_one() -> None:
    rng = np.random.default_rng(2)
    scores, indices = exact_topk(rng.standard_normal((3, 5)), rng.standard_normal((2, 5)), k=4)
    assert (indices[:, 2:] == -1).all() and np.isneginf(scores[:, 2:]).all()
    assert sorted(indices[0, :2].tolist()) == [0, 1]


def test_raw_inner_product_when_not_normalising() -> None:
    keys = np.array([[1.0, 0.0], [3.0, 0.0]], dtype=np.float32)
    scores, indices = exact_topk(np.array([[1.0, 0.0]]), keys, k=1, normalize=False)
    assert indices[0, 0] == 1 and scores[0, 0] == pytest.approx(3.0)


def test_merge_of_shards_equals_one_search() -> None:
    rng = np.random.default_rng(3)
    queries, keys = rng.standard_normal((50, 8)), rng.standard_normal((333, 8))
    keys[200] = keys[10]  # a cross-shard tie: shard order must not matter
    parts = []
    for start in (200, 0, 100):  # shards merged out of order on purpose
        s, i = exact_topk(queries, keys[start : start + 100 if start < 200 else None], k=5)
        parts.append((s, np.where(i >= 0, i + start, -1)))
    merged_scores, merged_ids = merge_topk(parts, k=5)
    want_scores, want_ids = exact_topk(queries, keys, k=5)
    np.testing.assert_array_equal(merged_ids, want_ids)
    np.testing.assert_allclose(merged_scores, want_scores, atol=1e-6)


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="dim"):
        exact_topk(np.ones((2, 3)), np.ones((2, 4)), k=1)
    with pytest.raises(ValueError, match="k must be"):
        exact_topk(np.ones((2, 3)), np.ones((2, 3)), k=-1)


def test_inputs_are_never_modified_and_unit_float32_is_not_copied() -> None:
    from polyret.mining.knn import as_unit_float32

    rng = np.random.default_rng(4)
    raw = rng.standard_normal((5, 3)).astype(np.float32)
    before = raw.copy()
    exact_topk(raw, raw, k=2)
    np.testing.assert_array_equal(raw, before)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    assert as_unit_float32(unit) is unit
    np.testing.assert_allclose(np.linalg.norm(as_unit_float32(raw), axis=1), 1.0, rtol=1e-6)
