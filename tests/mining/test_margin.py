"""Margin mining (PROTOCOLS §2.2): a hand-computed example, selection semantics, and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyret.mining.margin import _greedy_one_to_one, dedupe, margin_scores, mine_pairs

# tgt is the standard basis, so cos(x_i, y_j) = SRC[i, j]:
#        y1   y2   y3
# x1   [0.8, 0.6, 0.0]
# x2   [0.6, 0.8, 0.0]
# x3   [0.0, 0.6, 0.8]
SRC = np.array([[0.8, 0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8]], dtype=np.float32)
TGT = np.eye(3, dtype=np.float32)


def test_hand_computed_ratio_margins() -> None:
    """k=2. Mean k-NN cosine: x1 .7 (y1 .8, y2 .6), x2 .7, x3 .7 (y3 .8, y2 .6); y1 .7 (x1, x2), y2 .7 (x2 .8,
    x1 .6: x1 wins the .6 tie with x3), y3 .4 (x3 .8, x1 0: the 0-tie goes to x1).
    m(x1,y1) = .8/((.7+.7)/2) = 8/7; m(x2,y2) = 8/7; m(x3,y3) = .8/((.7+.4)/2) = 16/11; m(x1,y2) = .6/.7."""
    pairs = mine_pairs(SRC, TGT, k=2, threshold=None)
    assert pairs.src_index.tolist() == [2, 0, 1]
    assert pairs.tgt_index.tolist() == [2, 0, 1]
    np.testing.assert_allclose(pairs.score, [16 / 11, 8 / 7, 8 / 7], rtol=1e-6)


def test_hand_computed_distance_and_absolute_margins() -> None:
    distance = mine_pairs(SRC, TGT, k=2, margin="distance", threshold=None)
    np.testing.assert_allclose(distance.score, [0.8 - 0.55, 0.8 - 0.7, 0.8 - 0.7], atol=1e-6)
    absolute = mine_pairs(SRC, TGT, k=2, margin="absolute", threshold=None)
    assert absolute.src_index.tolist() == [0, 1, 2]  # all .8: ties by source index
    np.testing.assert_allclose(absolute.score, [0.8, 0.8, 0.8], atol=1e-6)


def test_threshold_and_min_count_floor_on_the_hand_example() -> None:
    assert mine_pairs(SRC, TGT, k=2, threshold=1.06).src_index.tolist() == [2, 0, 1]
    assert mine_pairs(SRC, TGT, k=2, threshold=1.2).src_index.tolist() == [2]
    # the floor admits below-threshold pairs until min_count are accepted, then stops
    assert mine_pairs(SRC, TGT, k=2, threshold=1.2, min_count=2).src_index.tolist() == [2, 0]
    assert mine_pairs(SRC, TGT, k=2, threshold=1.5, min_count=1).src_index.tolist() == [2]
    assert len(mine_pairs(SRC, TGT, k=2, threshold=1.5)) == 0


def test_margin_formula() -> None:
    np.testing.assert_allclose(margin_scores(np.array([0.8]), 0.7, 0.4, "ratio"), [0.8 / 0.55])
    np.testing.assert_allclose(margin_scores(np.array([0.8]), 0.7, 0.4, "distance"), [0.25])
    np.testing.assert_allclose(margin_scores(np.array([0.8]), 0.7, 0.4, "absolute"), [0.8])
    with pytest.raises(ValueError, match="unknown margin"):
        margin_scores(np.array([0.8]), 0.7, 0.4, "cosine")  # type: ignore[arg-type]


def test_greedy_selection_semantics() -> None:
    # candidates sorted by score: (0,0) 1.3, (1,0) 1.2 conflicts on tgt 0, (1,1) 1.1, (2,2) 1.0, (3,3) 0.9
    src = np.array([0, 1, 1, 2, 3])
    tgt = np.array([0, 0, 1, 2, 3])
    score = np.array([1.3, 1.2, 1.1, 1.0, 0.9])

    def accepted(threshold: float | None, min_count: int) -> list[int]:
        return np.flatnonzero(_greedy_one_to_one(src, tgt, score, 4, 4, threshold, min_count)).tolist()

    assert accepted(1.05, 0) == [0, 2]  # the conflict (1,0) is skipped; m must be strictly above
    assert accepted(1.1, 0) == [0]  # 1.1 is not > 1.1
    assert accepted(1.05, 3) == [0, 2, 3]  # floor of 3: (2,2) admitted below threshold, (3,3) not
    assert accepted(5.0, 10) == [0, 2, 3, 4]  # floor larger than available: every one-to-one pair
    assert accepted(None, 0) == [0, 2, 3, 4]  # no threshold: all one-to-one candidates


def test_recovers_a_planted_permutation_with_distractors() -> None:
    rng = np.random.default_rng(0)
    src = rng.standard_normal((200, 32))
    permutation = rng.permutation(200)
    tgt = np.vstack([src[permutation] + 0.3 * rng.standard_normal((200, 32)), rng.standard_normal((50, 32))])
    pairs = mine_pairs(src, tgt, k=4, threshold=1.06)
    assert len(pairs) >= 195
    assert (permutation[pairs.tgt_index] == pairs.src_index).all()


def reference_mine(src: np.ndarray, tgt: np.ndarray, k: int, threshold: float | None) -> list[tuple[int, int]]:
    """A loop-by-loop transcription of PROTOCOLS §2.2 on the full cosine matrix (float64)."""
    a = src / np.linalg.norm(src, axis=1, keepdims=True)
    b = tgt / np.linalg.norm(tgt, axis=1, keepdims=True)
    cos = a.astype(np.float64) @ b.astype(np.float64).T

    def knn(row: np.ndarray) -> list[int]:
        return sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]

    nn_x = [knn(cos[i]) for i in range(len(a))]
    nn_y = [knn(cos[:, j]) for j in range(len(b))]
    mean_x = [sum(cos[i, j] for j in nn_x[i]) / k for i in range(len(a))]
    mean_y = [sum(cos[i, j] for i in nn_y[j]) / k for j in range(len(b))]

    def m(i: int, j: int) -> float:
        return cos[i, j] / (mean_x[i] / 2 + mean_y[j] / 2)

    candidates = [(i, max(nn_x[i], key=lambda j, i=i: m(i, j))) for i in range(len(a))]
    candidates += [(max(nn_y[j], key=lambda i, j=j: m(i, j)), j) for j in range(len(b))]
    candidates.sort(key=lambda c: (-m(*c), c))
    used_x, used_y, out = set(), set(), []
    for i, j in candidates:
        if i in used_x or j in used_y or (threshold is not None and not m(i, j) > threshold):
            continue
        used_x.add(i)
        used_y.add(j)
        out.append((i, j))
    return out


def test_agrees_with_a_loop_transcription_of_the_protocol() -> None:
    rng = np.random.default_rng(1)
    src = rng.standard_normal((60, 8))
    tgt = np.vstack([src[:40] + 0.5 * rng.standard_normal((40, 8)), rng.standard_normal((30, 8))])
    for threshold in (None, 1.0, 1.06):
        pairs = mine_pairs(src, tgt, k=4, threshold=threshold)
        assert list(zip(pairs.src_index.tolist(), pairs.tgt_index.tolist(), strict=True)) == reference_mine(
            src, tgt, 4, threshold
        )


@settings(max_examples=40, deadline=None)
@given(
    n_src=st.integers(1, 30),
    n_tgt=st.integers(1, 30),
    k=st.integers(1, 6),
    threshold=st.one_of(st.none(), st.floats(0.5, 1.5)),
    min_count=st.integers(0, 10),
    seed=st.integers(0, 2**16),
)
def test_properties(n_src: int, n_tgt: int, k: int, threshold: float | None, min_count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    src, tgt = rng.standard_normal((n_src, 5)), rng.standard_normal((n_tgt, 5))
    pairs = mine_pairs(src, tgt, k=k, threshold=threshold, min_count=min_count)
    assert len(set(pairs.src_index.tolist())) == len(pairs) == len(set(pairs.tgt_index.tolist()))  # one-to-one
    assert (np.diff(pairs.score) <= 0).all()
    if threshold is not None:
        below = pairs.score <= threshold
        assert below.sum() <= max(0, min_count - (~below).sum())  # only the floor admits low pairs
        assert len(pairs) >= min(min_count, 1)  # there is always at least one candidate pair
    everything = mine_pairs(src, tgt, k=k, threshold=None)
    assert len(everything) >= len(pairs)


def test_not_one_to_one_keeps_distinct_candidates() -> None:
    hub = np.array([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2]])
    pairs = mine_pairs(hub, np.array([[1.0, 0.05]]), k=1, margin="absolute", threshold=None, one_to_one=False)
    assert sorted(pairs.src_index.tolist()) == [0, 1, 2] and set(pairs.tgt_index.tolist()) == {0}
    assert len(mine_pairs(hub, np.array([[1.0, 0.05]]), k=1, margin="absolute", threshold=None)) == 1


def test_empty_sides_and_bad_arguments() -> None:
    assert len(mine_pairs(np.empty((0, 4)), np.ones((3, 4)))) == 0
    with pytest.raises(ValueError, match="k must be"):
        mine_pairs(SRC, TGT, k=0)
    with pytest.raises(ValueError, match="unknown margin"):
        mine_pairs(SRC, TGT, margin="cos")  # type: ignore[arg-type]


def test_dedupe_keeps_first_occurrences() -> None:
    result = dedupe(["b", "a", "b", "c", "a", "b"])
    assert result.unique == ["b", "a", "c"]
    assert result.inverse.tolist() == [0, 1, 0, 2, 1, 0]
    assert dedupe([]).unique == [] and len(dedupe([]).inverse) == 0


def _write_shards(vectors: np.ndarray, folder, shard_size: int):
    from helpers.lookup_encoder import LookupEncoder
    from polyret.encode.shards import encode_to_shards, load_shards

    texts = [f"row {i}" for i in range(len(vectors))]
    encoder = LookupEncoder(dict(zip(texts, vectors, strict=True)), dim=vectors.shape[1])
    encode_to_shards(encoder, texts, folder, shard_size=shard_size, dtype="float32", show_progress=False)
    return load_shards(folder)[1]


def test_sharded_sides_mine_exactly_what_whole_arrays_mine(tmp_path) -> None:
    """Shard-against-shard k-NN (one shard of each side in memory) gives the one-array result, ties included."""
    from polyret.mining.index import IndexSpec

    rng = np.random.default_rng(3)
    src = rng.normal(size=(70, 16)).astype(np.float32)
    tgt = np.concatenate([src[::-1][:50] + 0.3 * rng.normal(size=(50, 16)), rng.normal(size=(30, 16))])
    tgt[5] = tgt[6]  # an exact tie
    src /= np.linalg.norm(src, axis=1, keepdims=True)
    tgt = (tgt / np.linalg.norm(tgt, axis=1, keepdims=True)).astype(np.float32)
    src_shards, tgt_shards = _write_shards(src, tmp_path / "s", 16), _write_shards(tgt, tmp_path / "t", 25)
    whole = mine_pairs(src, tgt, k=4, threshold=None)
    for sharded in (
        mine_pairs(src_shards, tgt_shards, k=4, threshold=None),
        mine_pairs(src, tgt_shards, k=4, threshold=None),
    ):
        np.testing.assert_array_equal(sharded.src_index, whole.src_index)
        np.testing.assert_array_equal(sharded.tgt_index, whole.tgt_index)
        np.testing.assert_allclose(sharded.score, whole.score, rtol=1e-6)
    hnsw = IndexSpec(kind="hnsw", hnsw_m=16, ef_search=200)
    approximate = mine_pairs(src_shards, tgt_shards, k=4, threshold=None, index=hnsw)
    assert set(zip(approximate.src_index.tolist(), approximate.tgt_index.tolist(), strict=True)) == set(
        zip(whole.src_index.tolist(), whole.tgt_index.tolist(), strict=True)
    )
