"""Margin-based bitext mining (PROTOCOLS §2.2): one implementation for BUCC, CRISS and ``polyret mine``.

For sides X (``src``) and Y (``tgt``), with NN_k(x) ⊂ Y and NN_k(y) ⊂ X found by exact cosine k-NN:

* ``ratio`` margin (the default, CRISS/LASER):
  ``m(x, y) = cos(x, y) / (Σ_{z∈NN_k(x)} cos(x, z)/2k + Σ_{z∈NN_k(y)} cos(y, z)/2k)``;
* ``distance`` margin: ``cos(x, y) − (the same denominator)``; ``absolute``: ``cos(x, y)``.

Candidates are, for each x, the best-margin y in NN_k(x) and, for each y, the best-margin x in NN_k(y).
Both lists are pooled and sorted by margin (descending; ties by source then target index), then accepted
greedily one-to-one: a pair is kept if neither side is used yet **and** either ``m > threshold`` or fewer
than ``min_count`` pairs have been accepted (``min_count`` is a floor). ``threshold=None`` accepts every
one-to-one candidate and keeps its score, which is what BUCC needs before tuning its threshold.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from polyret.encode.encoder import load_encoder, read_texts
from polyret.encode.shards import MANIFEST, load_shards
from polyret.errors import ConfigError, DataError
from polyret.io import read_json
from polyret.mining.index import IndexSpec, build_index, search, search_built, search_shards
from polyret.mining.knn import exact_topk
from polyret.mining.pairfile import ScoredPair, write_scored_pairs

if TYPE_CHECKING:
    from polyret.encode.base import Encoder

MarginKind = Literal["ratio", "distance", "absolute"]
MARGINS: tuple[str, ...] = get_args(MarginKind)
# one side of the mining: an array, or shards read one at a time (polyret.encode.shards.Shards)
Side = np.ndarray | Sequence[np.ndarray]


@dataclass(frozen=True)
class MinedPairs:
    """Accepted pairs sorted by score, descending: ``src_index[i]`` ↔ ``tgt_index[i]`` with ``score[i]``."""

    src_index: np.ndarray  # int64
    tgt_index: np.ndarray  # int64
    score: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.score)


@dataclass(frozen=True)
class Deduped:
    """Unique texts in first-occurrence order; ``inverse[i]`` is the unique position of input text ``i``
    (``texts[i] == unique[inverse[i]]``)."""

    unique: list[str]
    inverse: np.ndarray


def dedupe(texts: Sequence[str]) -> Deduped:
    """Exact-string deduplication, keeping first occurrences in order (mining step 1)."""
    position: dict[str, int] = {}
    inverse = np.fromiter(
        (position.setdefault(text, len(position)) for text in texts), dtype=np.int64, count=len(texts)
    )
    return Deduped(list(position), inverse)


def margin_scores(cos: np.ndarray, mean_x: np.ndarray, mean_y: np.ndarray, kind: MarginKind) -> np.ndarray:
    """Margin of cosines ``cos`` given each side's mean k-NN similarity (broadcasting; float64 out)."""
    cos = np.asarray(cos, dtype=np.float64)
    denominator = (np.asarray(mean_x, dtype=np.float64) + np.asarray(mean_y, dtype=np.float64)) / 2.0
    if kind == "ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            return cos / denominator
    if kind == "distance":
        return cos - denominator
    if kind == "absolute":
        return np.broadcast_to(cos, np.broadcast_shapes(cos.shape, denominator.shape)).copy()
    raise ValueError(f"unknown margin {kind!r}; valid: {', '.join(MARGINS)}")


def row_count(side: Side) -> int:
    """Vectors on a side (a :class:`~polyret.encode.shards.Shards` knows its count without loading anything)."""
    if isinstance(side, np.ndarray):
        return len(side)
    count = getattr(side, "count", None)
    return int(count) if isinstance(count, int) else sum(len(shard) for shard in side)


def neighbours(
    src: Side, tgt: Side, k: int, *, index: IndexSpec | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """k-NN both ways, ``((cos_st, ids_st), (cos_ts, ids_ts))``: exact (faiss flat, tie rule) unless ``index``
    asks for an approximate index.

    Sides given as shards are searched shard against shard (exact: :func:`~polyret.mining.index.search_shards`;
    approximate: an index over the other side, built shard by shard), so only a shard of each side is in memory
    besides the k-NN lists and the index; the result equals the one-array search.
    """
    approximate = index is not None and index.kind != "flat"
    if isinstance(src, np.ndarray) and isinstance(tgt, np.ndarray):
        if approximate:
            return search(src, tgt, k, index), search(tgt, src, k, index)
        return exact_topk(src, tgt, k), exact_topk(tgt, src, k)

    def one_way(queries: Side, keys: Side) -> tuple[np.ndarray, np.ndarray]:
        blocks = [queries] if isinstance(queries, np.ndarray) else queries
        if approximate:
            built = build_index(keys, index, n_total=row_count(keys))
            return _stack(search_built(built, block, k) for block in blocks)
        return _stack(search_shards(block, [keys] if isinstance(keys, np.ndarray) else keys, k) for block in blocks)

    return one_way(src, tgt), one_way(tgt, src)


def _stack(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    scores, ids = zip(*parts, strict=True)
    return np.concatenate(scores), np.concatenate(ids)


def mine_pairs(
    src: Side,
    tgt: Side,
    *,
    k: int = 4,
    margin: MarginKind = "ratio",
    threshold: float | None = 1.06,
    min_count: int = 0,
    one_to_one: bool = True,
    index: IndexSpec | None = None,
) -> MinedPairs:
    """Mine parallel pairs between embedded sides ``src`` [n, d] and ``tgt`` [m, d] (see the module docstring).

    Vectors are L2-normalised here. ``k`` is capped at the other side's size. With ``one_to_one=False``
    every distinct pooled candidate passing the threshold/floor rule is kept (a side may repeat). A side may be
    shards (:func:`polyret.encode.shards.load_shards`): memory then holds one shard per side, the k-NN lists and
    the candidates (O((n + m)·k)), never a whole side's vectors.
    """
    if margin not in MARGINS:
        raise ValueError(f"unknown margin {margin!r}; valid: {', '.join(MARGINS)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n_src, n_tgt = row_count(src), row_count(tgt)
    if n_src == 0 or n_tgt == 0:
        empty = np.empty(0, dtype=np.int64)
        return MinedPairs(empty, empty.copy(), np.empty(0, dtype=np.float64))
    (cos_st, ids_st), (cos_ts, ids_ts) = neighbours(src, tgt, k, index=index)
    cos_st, ids_st = cos_st[:, : min(k, n_tgt)], ids_st[:, : min(k, n_tgt)]
    cos_ts, ids_ts = cos_ts[:, : min(k, n_src)], ids_ts[:, : min(k, n_src)]
    mean_src = cos_st.astype(np.float64).mean(axis=1)
    mean_tgt = cos_ts.astype(np.float64).mean(axis=1)

    forward = margin_scores(cos_st, mean_src[:, None], mean_tgt[ids_st], margin)
    backward = margin_scores(cos_ts, mean_src[ids_ts], mean_tgt[:, None], margin)
    forward[~np.isfinite(forward)] = -np.inf
    backward[~np.isfinite(backward)] = -np.inf
    best_f = forward.argmax(axis=1)  # first maximum: neighbours are in (cos desc, index asc) order
    best_b = backward.argmax(axis=1)
    src_index = np.concatenate([np.arange(n_src), ids_ts[np.arange(n_tgt), best_b]])
    tgt_index = np.concatenate([ids_st[np.arange(n_src), best_f], np.arange(n_tgt)])
    score = np.concatenate([forward[np.arange(n_src), best_f], backward[np.arange(n_tgt), best_b]])
    order = np.lexsort((tgt_index, src_index, -score))
    src_index, tgt_index, score = src_index[order], tgt_index[order], score[order]

    if one_to_one:
        keep = _greedy_one_to_one(src_index, tgt_index, score, n_src, n_tgt, threshold, min_count)
    else:
        distinct = np.ones(len(score), dtype=bool)
        distinct[1:] = (src_index[1:] != src_index[:-1]) | (tgt_index[1:] != tgt_index[:-1])
        src_index, tgt_index, score = src_index[distinct], tgt_index[distinct], score[distinct]
        keep = np.ones(len(score), dtype=bool)
        if threshold is not None:
            keep = (score > threshold) | (np.arange(len(score)) < min_count)
    return MinedPairs(src_index[keep].astype(np.int64), tgt_index[keep].astype(np.int64), score[keep])


def _greedy_one_to_one(
    src_index: np.ndarray,
    tgt_index: np.ndarray,
    score: np.ndarray,
    n_src: int,
    n_tgt: int,
    threshold: float | None,
    min_count: int,
) -> np.ndarray:
    """Boolean mask of the accepted candidates (already sorted by score, descending)."""
    keep = np.zeros(len(score), dtype=bool)
    used_src = bytearray(n_src)
    used_tgt = bytearray(n_tgt)
    accepted = 0
    for position, (s, t, m) in enumerate(zip(src_index.tolist(), tgt_index.tolist(), score.tolist(), strict=True)):
        if threshold is not None and not m > threshold and accepted >= min_count:
            break  # sorted descending: nothing later can pass the threshold, and the floor is met
        if used_src[s] or used_tgt[t]:
            continue
        used_src[s] = used_tgt[t] = 1
        keep[position] = True
        accepted += 1
    return keep


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


@dataclass(frozen=True)
class MineSummary:
    """What :func:`mine_files` did (the CLI prints it)."""

    output: Path
    src_texts: int
    tgt_texts: int
    src_unique: int
    tgt_unique: int
    pairs: int
    encode_s: float
    mine_s: float


def _check_tsv_safe(texts: Sequence[str], path: Path) -> None:
    for number, text in enumerate(texts, start=1):
        if "\t" in text or "\n" in text or "\r" in text:
            raise DataError.at(path, number, "text contains a tab or line break, which the TSV output cannot hold")


@dataclass(frozen=True)
class MiningOptions:
    """The settings of :func:`mine_pairs` (see the module docstring); the defaults are CRISS/LASER's."""

    k: int = 4
    margin: MarginKind = "ratio"
    threshold: float | None = 1.06
    min_count: int = 0
    one_to_one: bool = True
    index: IndexSpec | None = None

    def mine(self, src: Side, tgt: Side) -> MinedPairs:
        return mine_pairs(src, tgt, **vars(self))


@dataclass(frozen=True)
class SideEncoding:
    """How mining encodes each side: with the model's **query** prefix (mining is a symmetric task, PROTOCOLS
    §1.1), at these settings."""

    batch_size: int = 32
    max_length: int | None = None
    show_progress: bool = True

    def encode(self, encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
        return encoder.encode(
            texts,
            prefix=encoder.query_prefix,
            max_length=self.max_length,
            batch_size=self.batch_size,
            show_progress=self.show_progress,
        )


def _write_pairs(path: Path, pairs: MinedPairs, src_labels: Sequence[str], tgt_labels: Sequence[str]) -> None:
    rows = zip(pairs.src_index.tolist(), pairs.tgt_index.tolist(), pairs.score.tolist(), strict=True)
    write_scored_pairs(path, (ScoredPair(score, src_labels[i], tgt_labels[j]) for i, j, score in rows))


def mine_files(
    model: str | Encoder,
    src: str | Path,
    tgt: str | Path,
    output: str | Path,
    options: MiningOptions = MiningOptions(),
    *,
    batch_size: int = 32,
    max_length: int | None = None,
    show_progress: bool = True,
) -> MineSummary:
    """Mine ``src`` against ``tgt`` (``.txt`` one text per line, or ``.jsonl`` with ``"text"``) and write
    ``score<TAB>src<TAB>tgt`` lines, best first, atomically to ``output``.

    Each side is deduplicated (exact strings) and encoded with the model's **query** prefix (mining is a
    symmetric task, PROTOCOLS §1.1); ``model`` is a name/path for :func:`polyret.encode.encoder.load_encoder`
    or an encoder object.
    """

    src_path, tgt_path, out_path = Path(src), Path(tgt), Path(output)
    src_texts, tgt_texts = read_texts(src_path), read_texts(tgt_path)
    _check_tsv_safe(src_texts, src_path)
    _check_tsv_safe(tgt_texts, tgt_path)
    src_side, tgt_side = dedupe(src_texts), dedupe(tgt_texts)
    encoder = load_encoder(model, max_length=max_length) if isinstance(model, str) else model
    started = time.perf_counter()
    encoding = SideEncoding(batch_size, max_length, show_progress)
    vectors = [encoding.encode(encoder, side.unique) for side in (src_side, tgt_side)]
    encoded = time.perf_counter()
    pairs = options.mine(vectors[0], vectors[1])
    mined = time.perf_counter()
    _write_pairs(out_path, pairs, src_side.unique, tgt_side.unique)
    return MineSummary(
        out_path,
        len(src_texts),
        len(tgt_texts),
        len(src_side.unique),
        len(tgt_side.unique),
        len(pairs),
        round(encoded - started, 3),
        round(mined - encoded, 3),
    )


def mine_shard_folders(
    src_dir: str | Path, tgt_dir: str | Path, output: str | Path, options: MiningOptions = MiningOptions()
) -> MineSummary:
    """Mine between two folders of :func:`polyret.encode.shards.encode_to_shards` (``polyret encode --shards``)
    and write ``score<TAB>src id<TAB>tgt id`` lines, best first, atomically to ``output``.

    Neither side is ever whole in memory (see :func:`mine_pairs`); texts are not deduplicated (give each text
    once). Both folders must come from the same model, prefix and maximum length.
    """

    src_path, tgt_path, out_path = Path(src_dir), Path(tgt_dir), Path(output)
    src_ids, src_shards = load_shards(src_path)
    tgt_ids, tgt_shards = load_shards(tgt_path)
    settings = [
        {key: read_json(folder / MANIFEST)["settings"][key] for key in ("fingerprint", "prefix", "max_length")}
        for folder in (src_path, tgt_path)
    ]
    if settings[0] != settings[1]:
        raise ConfigError(
            f"{src_path} and {tgt_path} were encoded differently ({settings[0]} vs {settings[1]}); "
            f"encode both sides with the same model, --prefix and --max-length"
        )
    started = time.perf_counter()
    pairs = options.mine(src_shards, tgt_shards)
    mined = time.perf_counter()
    _write_pairs(out_path, pairs, src_ids, tgt_ids)
    return MineSummary(
        out_path, len(src_ids), len(tgt_ids), len(src_ids), len(tgt_ids), len(pairs), 0.0, round(mined - started, 3)
    )
