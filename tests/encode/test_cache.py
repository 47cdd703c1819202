"""The embedding cache: hits are not re-encoded, keys separate prefix and max length, writes are atomic."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from polyret.encode import cache as cache_module
from polyret.encode.cache import CachedEncoder, EmbeddingCache, text_key


def test_second_encode_reads_everything_from_the_cache(polyret_home, counting_encoder):
    texts = [f"sentence {i}" for i in range(50)]
    first = CachedEncoder(counting_encoder).encode(texts, prefix="q: ")
    assert counting_encoder.calls == [50]
    again = CachedEncoder(counting_encoder).encode(texts, prefix="q: ")  # a new wrapper: read from disk
    assert counting_encoder.calls == [50]
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, np.stack([counting_encoder.vector(t, "q: ") for t in texts]))


def test_only_misses_are_encoded_and_order_is_kept(polyret_home, counting_encoder):
    encoder = CachedEncoder(counting_encoder)
    encoder.encode(["a", "b", "c"])
    mixed = ["d", "b", "d", "e", "a"]  # two new texts, one of them twice
    vectors = encoder.encode(mixed)
    assert counting_encoder.calls == [3, 2]
    np.testing.assert_array_equal(vectors, np.stack([counting_encoder.vector(t) for t in mixed]))


def test_key_separates_prefix_and_max_length(polyret_home, counting_encoder):
    encoder = CachedEncoder(counting_encoder)
    plain = encoder.encode(["x"])
    query = encoder.encode(["x"], prefix="q: ")
    short = encoder.encode(["x"], max_length=8)
    assert counting_encoder.calls == [1, 1, 1]
    assert not np.allclose(plain, query) and not np.allclose(plain, short)
    assert len({text_key("x"), text_key("x", "q: "), text_key("x", "", 8), text_key("q: x")}) == 4


def test_fingerprints_do_not_share_vectors(polyret_home, make_counting_encoder):
    one, two = make_counting_encoder(fingerprint="one"), make_counting_encoder(fingerprint="two")
    CachedEncoder(one).encode(["x"])
    CachedEncoder(two).encode(["x"])
    assert one.calls == [1] and two.calls == [1]
    assert (polyret_home / "embeddings" / "one").is_dir() and (polyret_home / "embeddings" / "two").is_dir()


def test_uncommitted_shards_are_ignored(polyret_home, counting_encoder):
    """A shard whose keys file never landed (killed mid-write) and stray temp files are invisible."""
    encoder = CachedEncoder(counting_encoder)
    encoder.encode(["a"])
    folder = encoder.cache.dir
    np.save(folder / "99999999999999999999-1-dead.vecs.npy", np.ones((1, 8), dtype=np.float32))
    (folder / ".00000000000000000001-1-beef.keys.npy.abc.tmp").write_bytes(b"partial")
    fresh = CachedEncoder(counting_encoder)
    assert len(fresh.cache) == 1
    fresh.encode(["a", "b"])
    assert counting_encoder.calls == [1, 1]


def test_many_shards_are_compacted(polyret_home, counting_encoder, monkeypatch):
    monkeypatch.setattr(cache_module, "COMPACT_AFTER", 3)
    encoder = CachedEncoder(counting_encoder)
    for i in range(8):
        encoder.encode([f"t{i}", "shared"])
    shards = list(encoder.cache.dir.glob("*.keys.npy"))
    assert len(shards) <= 3
    assert len(EmbeddingCache(counting_encoder.fingerprint)) == 9
    reader = CachedEncoder(counting_encoder)
    expected = np.stack([counting_encoder.vector(t) for t in ["shared", *[f"t{i}" for i in range(8)]]])
    calls = list(counting_encoder.calls)
    np.testing.assert_array_equal(reader.encode(["shared", *[f"t{i}" for i in range(8)]]), expected)
    assert counting_encoder.calls == calls


def test_tiered_merging_bounds_the_shard_count(polyret_home, counting_encoder, monkeypatch):
    monkeypatch.setattr(cache_module, "COMPACT_AFTER", 4)
    encoder = CachedEncoder(counting_encoder)
    for i in range(60):
        encoder.encode([f"t{i}"])
    shards = list(encoder.cache.dir.glob("*.keys.npy"))
    assert len(shards) <= 8
    texts = [f"t{i}" for i in range(60)]
    np.testing.assert_array_equal(
        CachedEncoder(counting_encoder).encode(texts), np.stack([counting_encoder.vector(t) for t in texts])
    )
    assert sum(counting_encoder.calls) == 60


def test_orphans_of_killed_writes_are_cleaned(polyret_home, counting_encoder):
    import os

    encoder = CachedEncoder(counting_encoder)
    encoder.encode(["a"])
    folder = encoder.cache.dir
    orphan = folder / "00000000000000000001-1-dead.vecs.npy"
    np.save(orphan, np.ones((1, 8), dtype=np.float32))
    temp = folder / ".x.keys.npy.abc.tmp"
    temp.write_bytes(b"partial")
    young = folder / "00000000000000000002-1-beef.vecs.npy"
    np.save(young, np.ones((1, 8), dtype=np.float32))
    for old in (orphan, temp):
        os.utime(old, (time.time() - 7200, time.time() - 7200))
    encoder.cache._drop_orphans()
    assert not orphan.exists() and not temp.exists() and young.exists()
    assert len(encoder.cache) == 1


def test_stale_index_recovers_after_another_process_compacts(polyret_home, counting_encoder):
    reader = EmbeddingCache(counting_encoder.fingerprint)
    writer = EmbeddingCache(counting_encoder.fingerprint)
    keys = [text_key(t) for t in "abc"]
    for key, text in zip(keys, "abc", strict=True):
        writer.put_many([key], counting_encoder.vector(text)[None])
    found, _ = reader.get_many(keys)
    assert found.all()
    writer.compact()  # the reader's index now points at deleted shards
    found, vectors = reader.get_many(keys)
    assert found.all()
    np.testing.assert_array_equal(vectors[1], counting_encoder.vector("b"))


def test_dimension_mismatch_is_refused(polyret_home):
    cache = EmbeddingCache("fp")
    cache.put_many([text_key("a")], np.ones((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="4-d"):
        cache.put_many([text_key("b")], np.ones((1, 5), dtype=np.float32))


def test_describe_and_delegation(polyret_home, counting_encoder):
    encoder = CachedEncoder(counting_encoder)
    assert encoder.query_prefix == "q: " and encoder.fingerprint == "counting-encoder" and encoder.dim == 8
    assert encoder.describe()["cache"] == str(polyret_home / "embeddings" / "counting-encoder")
    assert encoder.encode([]).shape == (0, 8)


def test_2000_cached_texts_take_under_two_seconds(polyret_home, tiny_model_dir):
    from polyret.encode.encoder import load_encoder

    texts = [f"sentence number {i} about the cat and the dog" for i in range(2000)]
    load_encoder(str(tiny_model_dir), device="cpu").encode(texts, prefix="query: ", show_progress=False)
    start = time.perf_counter()
    encoder = load_encoder(str(tiny_model_dir), device="cpu")  # a fresh encoder: index read from disk
    vectors = encoder.encode(texts, prefix="query: ", show_progress=False)
    elapsed = time.perf_counter() - start
    assert vectors.shape == (2000, 32)
    assert elapsed < 2.0, elapsed
    assert encoder.inner._model is None  # every vector came from the cache: the weights were never loaded


@pytest.mark.slow
def test_processes_sharing_one_cache_never_crash_nor_miss_while_it_compacts(tmp_path):
    """3 trials of 4 processes writing, compacting (thresholds lowered to compact at almost every write) and
    reading one cache folder; each checks every vector it reads. Without the readers' lock a shard compacted away
    between listing and reading crashed readers (FileNotFoundError ...vecs.npy) or made them miss vectors."""
    worker = Path(__file__).parent / "_cache_worker.py"
    workers, rounds = 4, 20
    for trial in range(3):
        root = tmp_path / f"trial-{trial}"
        processes = [
            subprocess.Popen(
                [sys.executable, str(worker), str(root), str(w), str(rounds), str(workers)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for w in range(workers)
        ]
        outputs = [process.communicate(timeout=300)[0] for process in processes]
        failed = [output[-1500:] for process, output in zip(processes, outputs, strict=True) if process.returncode]
        assert not failed, f"trial {trial}: {len(failed)} of {workers} processes failed:\n" + "\n".join(failed)
