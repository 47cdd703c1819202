"""Exact k-nearest-neighbour search by cosine, with a deterministic tie rule.

Every benchmark and the miner rank by exact inner product of L2-normalised float32 vectors
(PROTOCOLS §3: exact search, fp32 scores, ties broken by **ascending candidate index**).
:func:`exact_topk` runs faiss ``IndexFlatIP`` and then enforces the tie rule itself, because faiss does
not promise one: faiss 1.15 keeps the lowest indices of a tie group but returns them in *descending*
index order, and a tie group that straddles the k-th place is cut wherever its heap happened to be.

The fix-up is cheap: search ``k + 1`` neighbours, sort each row by (score desc, index asc), and for
the rare rows whose k-th and (k+1)-th scores are equal (the tie group may continue past what faiss
returned) re-collect the whole group with a range search and keep its lowest indices.
:func:`merge_topk` merges per-shard results under the same rule, so sharded search over a corpus too
large for memory (MIRACL) equals one exact search.
"""

from __future__ import annotations

from collections.abc import Iterable

import faiss
import numpy as np


def as_unit_float32(vectors: np.ndarray, *, normalize: bool = True) -> np.ndarray:
    """``vectors`` (2-D) as C-contiguous float32, L2-normalised unless ``normalize`` is False.

    Input that is already C-contiguous float32 with unit rows (what encoders return) comes back as is, without a
    copy; otherwise a normalised copy is made. Callers must not modify the result.
    """
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {array.shape}")
    array = np.ascontiguousarray(array)
    if not normalize or not array.size:
        return array
    norms = np.einsum("ij,ij->i", array, array)
    if np.all(np.abs(norms - 1.0) < 1e-5):
        return array
    array = array.copy() if np.shares_memory(array, vectors) else array
    faiss.normalize_L2(array)
    return array


def sort_rows(scores: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by score descending, then index ascending; ``-1`` (missing) indices go last."""
    missing = indices < 0
    primary = np.where(missing, np.inf, -scores.astype(np.float64))
    secondary = np.where(missing, np.iinfo(np.int64).max, indices)
    order = np.lexsort((secondary, primary), axis=-1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(indices, order, axis=1)


def _fix_boundary_ties(
    index: faiss.Index, queries: np.ndarray, scores: np.ndarray, indices: np.ndarray, k: int
) -> None:
    """Rows whose k-th and (k+1)-th scores tie: take the k lowest indices of the whole tie group (in place)."""
    rows = np.flatnonzero((indices[:, k] >= 0) & (scores[:, k - 1] == scores[:, k]))
    if rows.size == 0:
        return
    for row in rows:
        kth = float(scores[row, k - 1])
        radius = kth - max(1e-6, 1e-6 * abs(kth))  # a superset of the tie group, whatever path faiss takes
        lims, dist, ids = index.range_search(queries[row : row + 1], radius)
        got_scores, got_ids = sort_rows(dist[None, lims[0] : lims[1]], ids[None, lims[0] : lims[1]].astype(np.int64))
        scores[row, :k] = got_scores[0, :k]
        indices[row, :k] = got_ids[0, :k]


def search_index(index: faiss.Index, queries: np.ndarray, k: int, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of an exact faiss index for already-prepared float32 queries, with the tie rule applied.

    Returns ``(scores float32 [n, k], indices int64 [n, k])``; rows hold ``-1`` / ``-inf`` where the index
    has fewer than ``k`` vectors.
    """
    n = queries.shape[0]
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    indices = np.full((n, k), -1, dtype=np.int64)
    if k == 0 or n == 0 or index.ntotal == 0:
        return scores, indices
    fetch = min(k + 1, index.ntotal)
    for start in range(0, n, block):
        chunk = queries[start : start + block]
        got_scores, got_ids = index.search(chunk, fetch)
        got_scores, got_ids = sort_rows(got_scores, got_ids.astype(np.int64))
        if fetch > k:
            _fix_boundary_ties(index, chunk, got_scores, got_ids, k)
        width = min(k, fetch)
        scores[start : start + len(chunk), :width] = got_scores[:, :width]
        indices[start : start + len(chunk), :width] = got_ids[:, :width]
    return scores, indices


def exact_topk(
    queries: np.ndarray, keys: np.ndarray, k: int, block: int = 4096, *, normalize: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-``k`` keys for every query, ties broken by ascending key index.

    Both sides are converted to float32 and L2-normalised (pass ``normalize=False`` to rank by raw inner
    product). Queries are searched in blocks of ``block`` rows. ``k`` larger than the number of keys pads
    with index ``-1`` and score ``-inf``. Returns ``(scores float32 [n_queries, k], indices int64 [n_queries, k])``,
    each row in descending score order.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    query_vectors = as_unit_float32(queries, normalize=normalize)
    key_vectors = as_unit_float32(keys, normalize=normalize)
    if query_vectors.shape[0] and key_vectors.shape[0] and query_vectors.shape[1] != key_vectors.shape[1]:
        raise ValueError(f"queries have dim {query_vectors.shape[1]} but keys have dim {key_vectors.shape[1]}")
    index = faiss.IndexFlatIP(key_vectors.shape[1] if key_vectors.size else query_vectors.shape[1])
    if key_vectors.shape[0]:
        index.add(key_vectors)
    return search_index(index, query_vectors, k, block)


def merge_topk(parts: Iterable[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-shard ``(scores, global_indices)`` top-k lists into one top-k under the same tie rule.

    Each part must already hold *global* key indices (shard offset added). The merge is exact: the global
    top-k of a row is contained in the union of the shards' top-k lists.
    """
    merged_scores: np.ndarray | None = None
    merged_ids: np.ndarray | None = None
    for part_scores, part_ids in parts:
        if merged_scores is None:
            merged_scores, merged_ids = part_scores, part_ids
        else:
            merged_scores = np.concatenate([merged_scores, part_scores], axis=1)
            merged_ids = np.concatenate([merged_ids, part_ids], axis=1)
        merged_scores, merged_ids = sort_rows(merged_scores, merged_ids)
        merged_scores, merged_ids = merged_scores[:, :k], merged_ids[:, :k]
    if merged_scores is None:
        raise ValueError("merge_topk needs at least one part")
    return merged_scores, merged_ids
