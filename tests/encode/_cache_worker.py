"""Subprocess helper for the embedding-cache race test: one of several processes sharing one cache folder.

Usage: ``python _cache_worker.py CACHE_ROOT WORKER ROUNDS``. Each round adds a few new vectors (which soon makes
the cache compact, with the thresholds lowered) and reads back every vector written so far by any worker, checking
each against the value its key determines. Any exception ends the process with a traceback and a non-zero code.
"""

from __future__ import annotations

import sys
import zlib

import numpy as np

from polyret.encode import cache as cache_module

DIM = 4
PER_ROUND = 3


def vector(key: bytes) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(key)).normal(size=DIM).astype(np.float32)


def keys_of(worker: int, round_: int) -> list[bytes]:
    return [cache_module.text_key(f"w{worker} r{round_} t{i}") for i in range(PER_ROUND)]


def main(root: str, worker: int, rounds: int, workers: int) -> None:
    cache_module.COMPACT_AFTER, cache_module.MERGE_WIDTH = 2, 2  # compact at almost every write
    cache = cache_module.EmbeddingCache("race-test", root)
    for round_ in range(rounds):
        fresh = keys_of(worker, round_)
        cache.put_many(fresh, np.stack([vector(key) for key in fresh]))
        if round_ % 4 == 3:
            cache.compact()
        mine = [key for r in range(round_ + 1) for key in keys_of(worker, r)]
        theirs = [key for w in range(workers) for r in range(round_) for key in keys_of(w, r)]
        keys = mine + theirs
        found, vectors = cache.get_many(keys)
        assert found[: len(mine)].all(), f"worker {worker} round {round_}: lost its own vectors"
        for position in np.flatnonzero(found):
            np.testing.assert_array_equal(vectors[position], vector(keys[position]))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
