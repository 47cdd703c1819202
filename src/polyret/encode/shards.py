"""Sharded encoding of large corpora: fixed-size ``.npy`` shards, an id index and a manifest, resumable.

Layout of ``out_dir``::

    manifest.json          settings (encoder fingerprint, prefix, max length, shard size, dtype); once every
                           text is encoded also the shards, ``count``, ``dim`` and ``complete: true``
    shard-00000.npy        rows [0, shard_size) as an (n, dim) array of ``dtype``
    shard-00000.ids.json   the ids of those rows; written after the vectors, so it marks the shard finished
    ...
    ids.txt                every id, one per line, in row order (written at the end)

Every file goes through a temp file and a rename. A run that is killed resumes at the first missing shard: the
texts of finished shards are read past without encoding, and their ids are checked against the input so a
changed corpus is noticed instead of mixed in. Only one shard of texts and one of vectors are held in memory.

**Data-parallel**: with ``world_size`` W > 1 (``polyret encode --shards`` under torchrun), rank r encodes the
shards whose index is r modulo W and reads past the others; no process group is needed because the shard files
are the only shared state. Whichever rank finds every shard present after writing its last one writes
``ids.txt`` and the finished manifest (two ranks finishing together write the same bytes).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from polyret.encode.base import Encoder
from polyret.encode.cache import CachedEncoder
from polyret.errors import ConfigError, DataError
from polyret.io import atomic_write, read_json, write_json

MANIFEST = "manifest.json"
IDS_FILE = "ids.txt"
DTYPES = ("float32", "float16")


def shard_paths(out_dir: Path, index: int) -> tuple[Path, Path]:
    return out_dir / f"shard-{index:05d}.npy", out_dir / f"shard-{index:05d}.ids.json"


@dataclass(frozen=True)
class ShardRun:
    """What one call of :func:`encode_to_shards` did: ``complete`` once the whole folder is finished."""

    out_dir: Path
    encoded: int
    reused: int
    complete: bool
    count: int


def _records(texts: Iterable[str | tuple[str, str]]) -> Iterator[tuple[str, str]]:
    for number, item in enumerate(texts):
        if isinstance(item, str):
            yield str(number), item
            continue
        item_id, text = item
        item_id = str(item_id)
        if "\n" in item_id or "\r" in item_id:
            raise DataError(f"text id {item_id!r} (item {number}) contains a line break")
        yield item_id, text


def _id_hash(item_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest(), "little")


def _check_unique(out_dir: Path, hashes: np.ndarray, n_shards: int) -> None:
    """A DataError naming a repeated id. 8 bytes an id (sorted 64-bit hashes), not a set of every id string."""
    ordered = np.sort(hashes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not repeated.size:
        return
    target = int(repeated[0])
    places = [
        (index, item_id)
        for index in range(n_shards)
        for item_id in json.loads(shard_paths(out_dir, index)[1].read_text(encoding="utf-8"))
        if _id_hash(item_id) == target
    ]
    if len({item_id for _, item_id in places}) > 1:  # a 64-bit hash collision between distinct ids: harmless
        return
    raise DataError(
        f"{out_dir}: text id {places[0][1]!r} appears {len(places)} times (shards "
        f"{sorted({index for index, _ in places})}); ids must be unique: fix the input and start again in "
        f"an empty folder"
    )


def _shard_done(out_dir: Path, index: int, count: int) -> list[str] | None:
    """The ids of shard ``index`` when it is complete with ``count`` rows, else None."""
    vectors_path, ids_path = shard_paths(out_dir, index)
    if not (vectors_path.is_file() and ids_path.is_file()):
        return None
    try:
        ids = json.loads(ids_path.read_text(encoding="utf-8"))
        rows = np.load(vectors_path, mmap_mode="r").shape[0]
    except (OSError, ValueError):
        return None
    return ids if isinstance(ids, list) and len(ids) == rows == count else None


def _remove_stale_temps(out_dir: Path, pattern: str) -> None:
    # a SIGKILLed run leaves atomic_write's temp files (no cleanup runs); they are never complete outputs
    for stale in out_dir.glob(pattern):
        stale.unlink(missing_ok=True)


def _finish(out_dir: Path, manifest: dict[str, Any], counts: list[int], describe: dict[str, Any]) -> bool:
    """Write ``ids.txt`` and the finished manifest if every shard is present; False when one is still missing."""
    # a shard's ids file is written last, atomically: its presence says the shard is finished
    if not all(shard_paths(out_dir, index)[1].is_file() for index in range(len(counts))):
        return False
    shards, hashes = [], []
    with atomic_write(out_dir / IDS_FILE) as handle:  # streamed: one shard's ids at a time
        for index, count in enumerate(counts):
            vectors_path, ids_path = shard_paths(out_dir, index)
            ids = _shard_done(out_dir, index, count)
            if ids is None:
                raise DataError.at(
                    ids_path,
                    None,
                    f"shard {index} does not hold {count} rows; delete its two files and run again to re-encode it",
                )
            handle.writelines(f"{item_id}\n" for item_id in ids)
            hashes.append(np.fromiter((_id_hash(item_id) for item_id in ids), dtype=np.uint64, count=len(ids)))
            dim = int(np.load(vectors_path, mmap_mode="r").shape[1])
            shards.append({"index": index, "file": vectors_path.name, "ids": ids_path.name, "count": count, "dim": dim})
        _check_unique(out_dir, np.concatenate(hashes) if hashes else np.empty(0, np.uint64), len(counts))
    write_json(
        out_dir / MANIFEST,
        {
            **manifest,
            "encoder": describe,
            "shards": shards,
            "complete": True,
            "count": sum(counts),
            "n_shards": len(counts),
            "dim": shards[0]["dim"] if shards else None,
        },
    )
    return True


def _open_manifest(out: Path, manifest: dict[str, Any], world_size: int) -> ShardRun | None:
    """Start or continue the run in ``out``: its finished result, or None after checking the settings match."""
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        previous = read_json(manifest_path)
        if previous.get("settings") != manifest["settings"]:
            raise ConfigError(
                f"{out} holds shards written with other settings ({previous.get('settings')}); "
                f"use another folder or delete it to start again"
            )
        if previous.get("complete"):
            return ShardRun(out, 0, previous["n_shards"], True, previous["count"])
    if world_size == 1:  # with several ranks another one may be writing a temp file now: each cleans its shards
        _remove_stale_temps(out, ".*.tmp")
    if not manifest_path.is_file():
        write_json(manifest_path, manifest)
    return None


def encode_to_shards(
    encoder: Encoder,
    texts: Iterable[str | tuple[str, str]],
    out_dir: str | Path,
    shard_size: int = 100_000,
    dtype: str = "float16",
    *,
    prefix: str = "",
    max_length: int | None = None,
    batch_size: int = 32,
    show_progress: bool = True,
    rank: int = 0,
    world_size: int = 1,
) -> ShardRun:
    """Encode ``texts`` (strings, or ``(id, text)`` pairs; a string's id is its position) into ``out_dir``.

    A finished directory is returned at once; a partial one is resumed; one written with other settings
    (encoder fingerprint, prefix, max length, shard size, dtype) is a ConfigError. ``rank``/``world_size`` split
    the shards between processes (see the module docstring). The embedding cache is bypassed (the shards are the
    cache here), so a cached encoder's inner encoder does the work.
    """
    if shard_size < 1:
        raise ConfigError(f"shard_size must be positive, got {shard_size}")
    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is outside world size {world_size}")
    out = Path(out_dir)
    worker = encoder.inner if isinstance(encoder, CachedEncoder) else encoder
    settings = {
        "fingerprint": encoder.fingerprint,
        "prefix": prefix,
        "max_length": max_length,
        "shard_size": shard_size,
        "dtype": dtype,
    }
    manifest: dict[str, Any] = {"settings": settings, "complete": False}
    finished = _open_manifest(out, manifest, world_size)
    if finished is not None:
        return finished
    counts: list[int] = []
    encoded = reused = 0
    records = _records(texts)
    for index in itertools.count():
        chunk = list(itertools.islice(records, shard_size))
        if not chunk:
            break
        counts.append(len(chunk))
        if index % world_size != rank:
            continue
        ids = [item_id for item_id, _ in chunk]
        done = _shard_done(out, index, len(chunk))
        if done is not None:
            if done != ids:
                raise DataError(
                    f"{shard_paths(out, index)[1]}: the input changed since this shard was written "
                    f"(ids differ); use another folder or delete it to start again"
                )
            reused += 1
            continue
        _remove_stale_temps(out, f".shard-{index:05d}.*.tmp")
        texts_of_shard = [text for _, text in chunk]
        vectors = np.asarray(
            worker.encode(
                texts_of_shard, prefix=prefix, max_length=max_length, batch_size=batch_size, show_progress=show_progress
            )
        )
        vectors_path, ids_path = shard_paths(out, index)
        with atomic_write(vectors_path, "wb") as handle:
            np.save(handle, vectors.astype(dtype, copy=False))
        write_json(ids_path, ids)
        encoded += 1
    complete = _finish(out, manifest, counts, worker.describe())
    return ShardRun(out, encoded, reused, complete, sum(counts))


class Shards(Sequence[np.ndarray]):
    """The embedding shards of a finished run, each loaded from disk when it is asked for and not kept.

    Iterating holds one shard in memory at a time, which is what searching or indexing N passages needs
    (:func:`polyret.mining.index.search_shards`, :func:`polyret.mining.index.build_index`).
    """

    def __init__(self, out_dir: Path, entries: list[dict[str, Any]]) -> None:
        self.out_dir, self.entries = out_dir, entries

    def __len__(self) -> int:
        return len(self.entries)

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...
    @overload
    def __getitem__(self, index: slice) -> list[np.ndarray]: ...
    def __getitem__(self, index: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return np.load(self.out_dir / self.entries[index]["file"])

    @property
    def count(self) -> int:
        """Vectors across all shards."""
        return sum(entry["count"] for entry in self.entries)

    def ids_of(self, rows: Iterable[int]) -> dict[int, str]:
        """The ids of global ``rows``, reading only the id files of the shards that hold them (not every id)."""
        starts = np.cumsum([0] + [entry["count"] for entry in self.entries])
        by_shard: dict[int, list[int]] = {}
        for row in sorted({int(row) for row in rows if row >= 0}):
            by_shard.setdefault(int(np.searchsorted(starts, row, side="right")) - 1, []).append(row)
        found: dict[int, str] = {}
        for shard, shard_rows in by_shard.items():
            ids = json.loads((self.out_dir / self.entries[shard]["ids"]).read_text(encoding="utf-8"))
            found.update((row, ids[row - int(starts[shard])]) for row in shard_rows)
        return found


def open_shards(out_dir: str | Path) -> Shards:
    """The (lazily loaded) shards of a finished :func:`encode_to_shards` run, without reading its ids."""
    out = Path(out_dir)
    manifest = read_json(out / MANIFEST)
    if not manifest.get("complete"):
        raise DataError.at(out / MANIFEST, None, "the sharded encoding is not finished; run it again to resume")
    return Shards(out, manifest["shards"])


def load_shards(out_dir: str | Path) -> tuple[list[str], Shards]:
    """The ids (all of them, in row order) and the lazily loaded shards of a finished run."""
    shards = open_shards(out_dir)
    ids = (shards.out_dir / IDS_FILE).read_text(encoding="utf-8").splitlines()
    if shards.count != len(ids):
        raise DataError.at(shards.out_dir / IDS_FILE, None, "id count differs from the number of rows in the shards")
    return ids, shards
