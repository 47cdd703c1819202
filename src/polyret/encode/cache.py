"""The embedding cache: re-evaluating an unchanged model re-encodes nothing.

Vectors are keyed by (encoder fingerprint, text, prefix, max length). Each fingerprint has a folder
``$POLYRET_HOME/embeddings/<fingerprint>/`` of shards: ``<stem>.vecs.npy`` (float32 rows) and ``<stem>.keys.npy``
(one 16-byte BLAKE2b digest of prefix, max length and text per row). A shard is written vectors first, keys last,
each through a temp file and a rename, so a shard whose keys file exists is complete; readers ignore anything
else. Lookups are in bulk: the keys of every shard are read once into one ``digest -> (shard, row)`` dict and
the hit rows are gathered from memory-mapped vector files. Shards of similar size are merged now and then
(size-tiered, under a lock file, streamed), so the folder stays small however many times the cache is extended
and each row is rewritten only a few times.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polyret.encode.base import Encoder
from polyret.encode.batching import check_texts
from polyret.io import atomic_write, polyret_home, write_json

KEY_BYTES = 16
COMPACT_AFTER = 16  # look for shards to merge once a fingerprint has more than this many
MERGE_WIDTH = 4  # merge this many shards of the same size tier
_KEYS, _VECS = ".keys.npy", ".vecs.npy"


def cache_root() -> Path:
    return polyret_home() / "embeddings"


def text_key(text: str, prefix: str = "", max_length: int | None = None) -> bytes:
    """The 16-byte key of one text encoded with ``prefix`` and ``max_length`` (None: the encoder's default)."""
    payload = f"{prefix}\x1f{max_length if max_length is not None else 'default'}\x1f{text}"
    return hashlib.blake2b(payload.encode("utf-8", "surrogatepass"), digest_size=KEY_BYTES).digest()


class EmbeddingCache:
    """The cached vectors of one encoder fingerprint; see the module docstring for the layout."""

    def __init__(self, fingerprint: str, root: str | Path | None = None) -> None:
        if not fingerprint or "/" in fingerprint or fingerprint.startswith("."):
            raise ValueError(f"invalid encoder fingerprint {fingerprint!r}")
        self.fingerprint = fingerprint
        self.dir = Path(root or cache_root()) / fingerprint
        self._index: dict[bytes, tuple[int, int]] = {}
        self._stems: list[str] = []
        self._vectors: dict[int, np.ndarray] = {}

    # -- reading -------------------------------------------------------------------------------------------
    def _committed_stems(self) -> list[str]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(name[: -len(_KEYS)] for name in names if name.endswith(_KEYS) and not name.startswith("."))

    def refresh(self) -> None:
        """Index shards written since the last look (by this or another process)."""
        stems = self._committed_stems()
        if not set(self._stems) <= set(stems):  # something was compacted away: start again
            self._index, self._stems, self._vectors = {}, [], {}
        for stem in stems:
            if stem in self._stems:
                continue
            try:
                keys = np.load(self.dir / f"{stem}{_KEYS}")
            except FileNotFoundError:  # compacted between listing and reading
                continue
            number = len(self._stems)
            self._stems.append(stem)
            for row, key in enumerate(keys.view(f"V{KEY_BYTES}").ravel().tolist()):
                self._index.setdefault(key, (number, row))

    def __len__(self) -> int:
        self.refresh()
        return len(self._index)

    @property
    def dim(self) -> int | None:
        meta = self.dir / "meta.json"
        try:
            return int(json.loads(meta.read_text(encoding="utf-8"))["dim"])
        except (OSError, ValueError, KeyError):
            return None

    def get_many(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray | None]:
        """``(found, vectors)``: a bool mask over ``keys`` and an ``(n, dim)`` float32 array holding the hits
        (rows of misses are zero); ``vectors`` is None when nothing was found."""
        for attempt in range(2):
            try:
                return self._get_many(keys)
            except FileNotFoundError:  # a shard was compacted away under us: re-index once
                if attempt:
                    raise
                self._index, self._stems, self._vectors = {}, [], {}
        raise AssertionError("unreachable")

    def _get_many(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray | None]:
        self.refresh()
        found = np.zeros(len(keys), dtype=bool)
        places = [self._index.get(key) for key in keys]
        hits = [(i, place) for i, place in enumerate(places) if place is not None]
        if not hits:
            return found, None
        by_shard: dict[int, tuple[list[int], list[int]]] = {}
        for i, (shard, row) in hits:
            targets, rows = by_shard.setdefault(shard, ([], []))
            targets.append(i)
            rows.append(row)
        out: np.ndarray | None = None
        for shard, (targets, rows) in by_shard.items():
            vectors = self._shard_vectors(shard)
            if out is None:
                out = np.zeros((len(keys), vectors.shape[1]), dtype=np.float32)
            out[targets] = vectors[rows]
            found[targets] = True
        return found, out

    def _shard_vectors(self, shard: int) -> np.ndarray:
        if shard not in self._vectors:
            self._vectors[shard] = np.load(self.dir / f"{self._stems[shard]}{_VECS}", mmap_mode="r")
        return self._vectors[shard]

    # -- writing -------------------------------------------------------------------------------------------
    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Add rows (float32, one per key) as a new shard; merges shards of similar size now and then."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        if not len(keys):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        known = self.dim
        if known is None:
            write_json(self.dir / "meta.json", {"fingerprint": self.fingerprint, "dim": int(vectors.shape[1])})
        elif known != vectors.shape[1]:
            raise ValueError(f"cache {self.dir} holds {known}-d vectors, got {vectors.shape[1]}-d")
        keys_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, KEY_BYTES)
        stem = _new_stem()
        with atomic_write(self.dir / f"{stem}{_VECS}", "wb") as handle:
            np.save(handle, vectors)
        self._commit(stem, keys_array)
        if len(self._committed_stems()) > COMPACT_AFTER:
            self._compact_tiers()

    def _commit(self, stem: str, keys: np.ndarray) -> None:
        with atomic_write(self.dir / f"{stem}{_KEYS}", "wb") as handle:  # the keys file makes the shard visible
            np.save(handle, keys)

    def _compact_tiers(self) -> None:
        """Size-tiered merging: shards whose row counts share a power-of-4 tier merge once a tier holds
        ``MERGE_WIDTH`` of them, so each row is rewritten only O(log n) times however often the cache grows."""
        with self._lock() as locked:
            if not locked:
                return
            self._drop_orphans()
            tiers: dict[int, list[str]] = {}
            for stem in self._committed_stems():
                rows = np.load(self.dir / f"{stem}{_KEYS}", mmap_mode="r").shape[0]
                tiers.setdefault(int(math.log(max(rows, 1), MERGE_WIDTH)), []).append(stem)
            for stems in tiers.values():
                if len(stems) >= MERGE_WIDTH:
                    self._merge(stems)

    def _drop_orphans(self, min_age_s: float = 3600.0) -> None:
        """Delete vectors whose keys never landed and temp files, left by runs killed mid-write an hour ago."""
        committed = set(self._committed_stems())
        for name in os.listdir(self.dir):
            orphan = name.endswith(_VECS) and not name.startswith(".") and name[: -len(_VECS)] not in committed
            if orphan or (name.startswith(".") and name.endswith(".tmp")):
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - (self.dir / name).stat().st_mtime > min_age_s:
                        os.unlink(self.dir / name)

    def compact(self) -> None:
        """Merge every shard into one (duplicates dropped); a no-op while another process is compacting."""
        with self._lock() as locked:
            if locked:
                self._merge(self._committed_stems())

    def _merge(self, stems: list[str]) -> None:
        """Write the union of ``stems`` (first copy of each key) as one shard, streamed, then drop them."""
        if len(stems) < 2:
            return
        seen: set[bytes] = set()
        parts: list[tuple[str, list[int]]] = []
        for stem in stems:
            keys = np.load(self.dir / f"{stem}{_KEYS}")
            rows = []
            for row, key in enumerate(keys.view(f"V{KEY_BYTES}").ravel().tolist()):
                if key not in seen:
                    seen.add(key)
                    rows.append(row)
            parts.append((stem, rows))
        dim = np.load(self.dir / f"{stems[0]}{_VECS}", mmap_mode="r").shape[1]
        stem = _new_stem()
        target = self.dir / f"{stem}{_VECS}"
        temporary = self.dir / f".{stem}{_VECS}.tmp"
        merged = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float32, shape=(len(seen), dim))
        merged_keys = np.empty((len(seen), KEY_BYTES), dtype=np.uint8)
        position = 0
        for source, rows in parts:
            merged[position : position + len(rows)] = np.load(self.dir / f"{source}{_VECS}", mmap_mode="r")[rows]
            merged_keys[position : position + len(rows)] = np.load(self.dir / f"{source}{_KEYS}")[rows]
            position += len(rows)
        merged.flush()
        del merged
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        self._commit(stem, merged_keys)
        for source in stems:  # keys first: a shard without keys is ignored by readers
            for suffix in (_KEYS, _VECS):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.dir / f"{source}{suffix}")
        self._index, self._stems, self._vectors = {}, [], {}

    @contextlib.contextmanager
    def _lock(self) -> Iterator[bool]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _new_stem() -> str:
    return f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"


class CachedEncoder:
    """Wraps any :class:`~polyret.encode.base.Encoder`: hits come from the cache, only misses are encoded.

    The wrapped encoder is only asked for vectors it has never produced, so an encoder that loads its weights
    lazily does not load them at all when every text is a hit.
    """

    def __init__(self, inner: Encoder, cache: EmbeddingCache | None = None) -> None:
        self.inner = inner
        self._cache = cache

    @property
    def cache(self) -> EmbeddingCache:
        if self._cache is None:
            self._cache = EmbeddingCache(self.inner.fingerprint)
        return self._cache

    @property
    def query_prefix(self) -> str:
        return self.inner.query_prefix

    @query_prefix.setter
    def query_prefix(self, value: str) -> None:
        self.inner.query_prefix = value

    @property
    def passage_prefix(self) -> str:
        return self.inner.passage_prefix

    @passage_prefix.setter
    def passage_prefix(self, value: str) -> None:
        self.inner.passage_prefix = value

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def dim(self) -> int:
        return self.cache.dim or self.inner.dim

    def describe(self) -> dict[str, object]:
        return {**self.inner.describe(), "cache": str(self.cache.dir)}

    def __getattr__(self, name: str) -> Any:  # tokenize, max_length, ... of the wrapped encoder
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def encode(
        self,
        texts: Sequence[str],
        *,
        prefix: str = "",
        max_length: int | None = None,
        batch_size: int = 32,
        show_progress: bool = True,
    ) -> np.ndarray:
        texts = check_texts(texts)
        # An explicit cap equal to the encoder's default produces the same vectors, so it shares their entries.
        max_length = max_length if max_length is not None else getattr(self.inner, "max_length", None)
        keys = [text_key(text, prefix, max_length) for text in texts]
        found, out = self.cache.get_many(keys)
        if found.all() and out is not None:
            return out
        first: dict[bytes, int] = {}  # encode each distinct missing text once
        for i in np.flatnonzero(~found):
            first.setdefault(keys[i], int(i))
        todo = list(first.values())
        fresh = self.inner.encode(
            [texts[i] for i in todo],
            prefix=prefix,
            max_length=max_length,
            batch_size=batch_size,
            show_progress=show_progress,
        )
        fresh = np.asarray(fresh, dtype=np.float32)
        self.cache.put_many([keys[i] for i in todo], fresh)
        if out is None:
            out = np.zeros((len(texts), fresh.shape[1]), dtype=np.float32)
        row_of = {keys[i]: row for row, i in enumerate(todo)}
        missing = np.flatnonzero(~found)
        out[missing] = fresh[[row_of[keys[i]] for i in missing]]
        return out
