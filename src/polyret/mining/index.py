"""faiss indexes from a small typed spec: ``flat`` (exact), ``ivf-flat``, ``ivf-pq``, ``hnsw``.

Benchmarks use exact search (:mod:`polyret.mining.knn`); the approximate kinds are for mining or retrieval
over corpora too large for an exact pass, and :func:`recall_against_exact` measures what they lose.
Vectors may arrive as one array or as an iterable of shards (e.g. the embedding shards of a large corpus):
:func:`build_index` trains on the first ``train_size`` vectors, then adds shard by shard. With GPU faiss
(``faiss.get_num_gpus() > 0``) flat and IVF indexes move to all GPUs unless ``use_gpu=False``; HNSW stays on
the CPU (faiss has no GPU HNSW). All indexes use inner product on L2-normalised float32 vectors (cosine).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
from pydantic import ConfigDict, Field

from polyret.encode.shards import MANIFEST, open_shards
from polyret.errors import ConfigError, DataError
from polyret.io import atomic_write, read_json
from polyret.mining.knn import as_unit_float32, exact_topk, merge_topk, search_index, sort_rows
from polyret.validation import StrictModel

log = logging.getLogger(__name__)

IndexKind = Literal["flat", "ivf-flat", "ivf-pq", "hnsw"]


class IndexSpec(StrictModel):
    """How to build a search index (a config block; every field has a working default)."""

    model_config = ConfigDict(frozen=True)

    kind: IndexKind = "flat"
    nlist: int | None = Field(default=None, ge=1, description="IVF cells; default about 4·sqrt(n), capped by n/39")
    nprobe: int = Field(default=16, ge=1, description="IVF cells visited per query")
    pq_m: int = Field(default=16, ge=1, description="PQ sub-quantizers; must divide the dimension")
    pq_bits: int = Field(default=8, ge=1, le=16)
    hnsw_m: int = Field(default=32, ge=2)
    ef_construction: int = Field(default=200, ge=1)
    ef_search: int = Field(default=128, ge=1)
    train_size: int | None = Field(default=None, ge=1, description="training vectors; default 256·nlist")
    use_gpu: bool | None = Field(default=None, description="None: use GPU faiss when present")
    seed: int = 0

    def build_key(self) -> str:
        """A digest of the fields that shape a built index (not the search-time ``nprobe``/``ef_search``)."""
        fields = self.model_dump(exclude={"nprobe", "ef_search", "use_gpu"})
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]

    def resolved_nlist(self, n: int) -> int:
        if self.nlist is not None:
            return self.nlist
        # faiss wants >= 39 training points per centroid; keep at least one cell
        return max(1, min(int(4 * math.sqrt(max(n, 1))), n // 39))

    def factory_string(self, dim: int, n: int) -> str:
        """The faiss ``index_factory`` description for ``n`` vectors of dimension ``dim``."""
        if self.kind == "flat":
            return "Flat"
        if self.kind == "hnsw":
            return f"HNSW{self.hnsw_m},Flat"
        nlist = self.resolved_nlist(n)
        if self.kind == "ivf-flat":
            return f"IVF{nlist},Flat"
        if dim % self.pq_m:
            raise ConfigError(f"index.pq_m: {self.pq_m} does not divide the embedding dimension {dim}")
        return f"IVF{nlist},PQ{self.pq_m}x{self.pq_bits}np"  # np: skip the slow polysemous training


def _shards(vectors: np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    if isinstance(vectors, np.ndarray):
        yield vectors
    else:
        yield from vectors


def gpu_available() -> bool:
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def _to_gpu(index: faiss.Index, spec: IndexSpec) -> faiss.Index:
    wanted = spec.use_gpu if spec.use_gpu is not None else gpu_available()
    if not wanted or spec.kind == "hnsw":
        return index
    if not gpu_available():
        raise ConfigError("index.use_gpu: true, but this faiss has no GPU; install faiss-gpu or set use_gpu: false")
    return faiss.index_cpu_to_all_gpus(index)


def build_index(
    vectors: np.ndarray | Iterable[np.ndarray], spec: IndexSpec | None = None, *, n_total: int | None = None
) -> faiss.Index:
    """Build, train (IVF kinds) and fill an inner-product index over ``vectors`` (one array or shards).

    Shards are normalised one at a time, so only one shard plus the training sample is held at once.
    ``n_total`` (the number of vectors across shards) sizes ``nlist`` when shards come from a generator;
    without it the training sample's size is used.
    """
    spec = spec or IndexSpec()
    shards = _shards(vectors)
    first = next(shards, None)
    if first is None:
        raise ValueError("build_index needs at least one vector")
    first = as_unit_float32(first)
    dim = first.shape[1]
    pending: list[np.ndarray] = [first]
    index: faiss.Index | None = None
    if spec.kind in ("ivf-flat", "ivf-pq"):
        rough_n = n_total or len(first)
        wanted = spec.train_size or 256 * spec.resolved_nlist(rough_n)
        have = len(first)
        while have < wanted:  # gather enough training vectors from the next shards
            shard = next(shards, None)
            if shard is None:
                break
            pending.append(as_unit_float32(shard))
            have += len(pending[-1])
        sample = np.concatenate(pending) if len(pending) > 1 else first
        n_for_nlist = n_total or len(sample)
        if len(sample) > wanted:
            rng = np.random.default_rng(spec.seed)
            sample = sample[np.sort(rng.choice(len(sample), wanted, replace=False))]
        index = faiss.index_factory(dim, spec.factory_string(dim, n_for_nlist), faiss.METRIC_INNER_PRODUCT)
        faiss.extract_index_ivf(index).cp.seed = spec.seed
        index = _to_gpu(index, spec)
        index.train(sample)
    else:
        index = faiss.index_factory(dim, spec.factory_string(dim, n_total or len(first)), faiss.METRIC_INNER_PRODUCT)
        if spec.kind == "hnsw":
            index.hnsw.efConstruction = spec.ef_construction
        index = _to_gpu(index, spec)
    for shard in pending:
        index.add(shard)
    for shard in shards:
        index.add(as_unit_float32(shard))
    set_search_params(index, spec)
    return index


def set_search_params(index: faiss.Index, spec: IndexSpec) -> None:
    """Apply ``nprobe`` / ``efSearch`` (works for CPU and GPU indexes)."""
    if spec.kind in ("ivf-flat", "ivf-pq"):
        space = faiss.GpuParameterSpace() if _is_gpu(index) else faiss.ParameterSpace()
        space.set_index_parameter(index, "nprobe", spec.nprobe)
    elif spec.kind == "hnsw":
        index.hnsw.efSearch = spec.ef_search


def _is_gpu(index: faiss.Index) -> bool:
    return "Gpu" in type(index).__name__


def search_built(index: faiss.Index, queries: np.ndarray, k: int, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` from a built index, rows sorted by (score desc, index asc); flat indexes get the full tie rule."""
    prepared = as_unit_float32(queries)
    if isinstance(index, faiss.IndexFlat):
        return search_index(index, prepared, k, block)
    scores = np.empty((len(prepared), k), dtype=np.float32)
    ids = np.empty((len(prepared), k), dtype=np.int64)
    for start in range(0, len(prepared), block):
        got_scores, got_ids = index.search(prepared[start : start + block], k)
        got_scores = np.where(got_ids < 0, -np.inf, got_scores).astype(np.float32)
        scores[start : start + block], ids[start : start + block] = sort_rows(got_scores, got_ids.astype(np.int64))
    return scores, ids


def search(
    queries: np.ndarray, keys: np.ndarray, k: int, spec: IndexSpec | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Build an index over ``keys`` per ``spec`` and return the top-``k`` of every query."""
    spec = spec or IndexSpec()
    if spec.kind == "flat" and not (spec.use_gpu or (spec.use_gpu is None and gpu_available())):
        return exact_topk(queries, keys, k)
    return search_built(build_index(keys, spec), queries, k)


def search_shards(queries: np.ndarray, shards: Iterable[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` over keys that arrive in shards (indices are global: shard offsets added).

    Each shard is searched exactly and the per-shard top-k lists are merged under the tie rule, so the result
    equals one exact search while only one shard is in memory (PROTOCOLS §3.4: MIRACL's large corpora).
    """
    prepared = as_unit_float32(queries)

    def parts() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        offset = 0
        for shard in shards:
            scores, ids = exact_topk(prepared, shard, k, normalize=True)
            yield scores, np.where(ids >= 0, ids + offset, -1)
            offset += len(shard)

    return merge_topk(parts(), k)


def recall_against_exact(approximate_ids: np.ndarray, exact_ids: np.ndarray, k: int | None = None) -> float:
    """Mean over queries of |approximate top-k ∩ exact top-k| / |exact top-k| (missing ``-1`` ids ignored)."""
    k = k or exact_ids.shape[1]
    total = 0.0
    for approx_row, exact_row in zip(approximate_ids[:, :k], exact_ids[:, :k], strict=True):
        truth = {int(i) for i in exact_row if i >= 0}
        if truth:
            total += len(truth & {int(i) for i in approx_row if i >= 0}) / len(truth)
        else:
            total += 1.0
    return total / max(len(exact_ids), 1)


def measure_recall(queries: np.ndarray, keys: np.ndarray, k: int, spec: IndexSpec) -> float:
    """Recall@k of the ``spec`` index against exact search on the same data."""
    approximate = search(queries, keys, k, spec)[1]
    exact = exact_topk(queries, keys, k)[1]
    return recall_against_exact(approximate, exact, k)


def corpus_index_path(shards_dir: str | Path, spec: IndexSpec) -> Path:
    """Where :func:`corpus_index` keeps the ``spec`` index of a sharded encoding (keyed by build settings and data)."""
    folder = Path(shards_dir)
    manifest = read_json(folder / MANIFEST)
    data = json.dumps([manifest["settings"], manifest.get("count")], sort_keys=True)
    return folder / f"index-{spec.kind}-{hashlib.sha256(f'{spec.build_key()}|{data}'.encode()).hexdigest()[:12]}.faiss"


def corpus_index(shards_dir: str | Path, spec: IndexSpec) -> faiss.Index:
    """The ``spec`` index over a finished sharded encoding (:mod:`polyret.encode.shards`), built once.

    The built index is saved beside the shards as ``index-<kind>-<key>.faiss`` (atomically) and read back by
    every later search with the same build settings, so building happens once and searching many times.
    """
    shards = open_shards(shards_dir)
    path = corpus_index_path(shards_dir, spec)
    if path.is_file():
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as err:
            raise DataError.at(
                path, None, f"unreadable faiss index ({str(err).splitlines()[0]}); delete it to rebuild"
            ) from None
        index = _to_gpu(index, spec)
    else:
        index = build_index(shards, spec, n_total=shards.count)
        with atomic_write(path, "wb") as handle:
            faiss.write_index(
                faiss.index_gpu_to_cpu(index) if _is_gpu(index) else index, faiss.PyCallbackIOWriter(handle.write)
            )
        log.info("saved the %s index over %d vectors to %s", spec.kind, shards.count, path)
    set_search_params(index, spec)
    return index


def search_corpus(
    queries: np.ndarray, shards_dir: str | Path, k: int, spec: IndexSpec | None = None
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Top-``k`` passages of a sharded encoding for every query: ``(scores, row indices, {row: passage id})``.

    ``flat`` streams the shards through exact search (one shard in memory, PROTOCOLS' tie rule); the other kinds
    search the index of :func:`corpus_index`. Only the ids of returned rows are read.
    """
    spec = spec or IndexSpec()
    shards = open_shards(shards_dir)
    if spec.kind == "flat" and not (spec.use_gpu or (spec.use_gpu is None and gpu_available())):
        scores, rows = search_shards(queries, shards, k)
    else:
        scores, rows = search_built(corpus_index(shards_dir, spec), queries, k)
    return scores, rows, shards.ids_of(rows.ravel().tolist())
