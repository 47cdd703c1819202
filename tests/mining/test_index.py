"""Index factory: each kind builds, searches and reaches a sane recall on small random data."""

from __future__ import annotations

import numpy as np
import pytest

from polyret.errors import ConfigError
from polyret.mining.index import (
    IndexSpec,
    build_index,
    measure_recall,
    recall_against_exact,
    search,
    search_built,
    search_shards,
)
from polyret.mining.knn import exact_topk


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    """Keys in 40 clusters and queries near random keys: the structure IVF relies on."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, 32))
    keys = centres[rng.integers(0, 40, 4000)] + 0.3 * rng.standard_normal((4000, 32))
    queries = keys[rng.choice(4000, 200, replace=False)] + 0.1 * rng.standard_normal((200, 32))
    return queries.astype(np.float32), keys.astype(np.float32)


def test_factory_strings() -> None:
    assert IndexSpec().factory_string(384, 10_000) == "Flat"
    assert IndexSpec(kind="ivf-flat", nlist=100).factory_string(384, 10_000) == "IVF100,Flat"
    assert IndexSpec(kind="ivf-flat").factory_string(384, 10_000) == "IVF256,Flat"  # 4·sqrt(n), n/39 = 256
    assert IndexSpec(kind="ivf-pq", nlist=64, pq_m=48).factory_string(384, 10_000) == "IVF64,PQ48x8np"
    assert IndexSpec(kind="hnsw", hnsw_m=16).factory_string(384, 10) == "HNSW16,Flat"
    with pytest.raises(ConfigError, match="pq_m"):
        IndexSpec(kind="ivf-pq", pq_m=7).factory_string(384, 10_000)
    with pytest.raises(ValueError):
        IndexSpec(kind="lsh")  # type: ignore[arg-type]


def test_flat_equals_exact(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    queries, keys = clustered
    _, ids = search(queries, keys, 5, IndexSpec(kind="flat", use_gpu=False))
    _, want_ids = exact_topk(queries, keys, 5)
    np.testing.assert_array_equal(ids, want_ids)
    assert measure_recall(queries, keys, 5, IndexSpec(kind="flat", use_gpu=False)) == 1.0


@pytest.mark.parametrize(
    ("spec", "floor"),
    [
        (IndexSpec(kind="ivf-flat", nlist=32, nprobe=8, use_gpu=False), 0.9),
        (IndexSpec(kind="ivf-pq", nlist=32, nprobe=8, pq_m=16, pq_bits=4, use_gpu=False), 0.3),
        (IndexSpec(kind="hnsw", hnsw_m=16, ef_search=64), 0.9),
    ],
)
def test_approximate_kinds_reach_a_sane_recall(
    clustered: tuple[np.ndarray, np.ndarray], spec: IndexSpec, floor: float
) -> None:
    queries, keys = clustered
    scores, ids = search(queries, keys, 10, spec)
    assert ids.shape == (200, 10) and (np.diff(scores, axis=1) <= 1e-6).all()
    recall = recall_against_exact(ids, exact_topk(queries, keys, 10)[1])
    assert floor <= recall <= 1.0


def test_build_from_shards_trains_then_adds_everything(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    queries, keys = clustered
    spec = IndexSpec(kind="ivf-flat", nlist=16, nprobe=16, train_size=700, use_gpu=False)
    index = build_index((keys[i : i + 500] for i in range(0, 4000, 500)), spec, n_total=4000)
    assert index.ntotal == 4000
    _, ids = search_built(index, queries, 5)
    assert recall_against_exact(ids, exact_topk(queries, keys, 5)[1]) == 1.0  # nprobe = nlist: exhaustive


def test_exact_search_over_shards_equals_one_search(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    queries, keys = clustered
    sharded = search_shards(queries, (keys[i : i + 333] for i in range(0, 4000, 333)), 100)
    whole = exact_topk(queries, keys, 100)
    np.testing.assert_allclose(sharded[0], whole[0], atol=1e-6)
    # shards compute dot products in other BLAS blocks: near-ties (< 1e-6 apart) may swap, nothing else
    near_tie = np.zeros_like(whole[0], dtype=bool)
    near_tie[:, 1:] |= np.abs(np.diff(whole[0], axis=1)) < 1e-6
    near_tie[:, :-1] |= near_tie[:, 1:].copy()
    assert (sharded[1] == whole[1])[~near_tie].all()


def test_recall_helper_by_hand() -> None:
    exact = np.array([[1, 2, 3], [4, 5, 6]])
    approx = np.array([[3, 2, 9], [7, 8, -1]])
    assert recall_against_exact(approx, exact) == pytest.approx((2 / 3 + 0) / 2)
    assert recall_against_exact(approx, exact, k=1) == pytest.approx(0.0)


def test_gpu_requested_without_gpu_is_a_config_error(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    from polyret.mining.index import gpu_available

    if gpu_available():
        pytest.skip("this faiss has a GPU")
    with pytest.raises(ConfigError, match="faiss-gpu"):
        build_index(clustered[1], IndexSpec(kind="ivf-flat", nlist=8, use_gpu=True))
