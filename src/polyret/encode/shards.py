"""Sharded encoding of large corpora: fixed-size ``.npy`` shards, an id index and a manifest, resumable.

Layout of ``out_dir``::

    manifest.json          settings (encoder fingerprint, prefix, max length, shard size, dtype, dim), the
                           finished shards, and ``complete`` once every text is encoded
    shard-00000.npy        rows [0, shard_size) as an (n, dim) array of ``dtype``
    shard-00000.ids.json   the ids of those rows
    ...
    ids.txt                every id, one per line, in row order (written at the end)

Each shard is written vectors first, then its ids, then the manifest, each through a temp file and a rename. A
run that is killed resumes at the first missing shard: the texts of finished shards are read past without
encoding, and their ids are checked against the input so a changed corpus is noticed instead of mixed in.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from polyret.encode.base import Encoder
from polyret.errors import ConfigError, DataError
from polyret.io import atomic_write, read_json, write_json

MANIFEST = "manifest.json"
IDS_FILE = "ids.txt"
DTYPES = ("float32", "float16")


def shard_paths(out_dir: Path, index: int) -> tuple[Path, Path]:
    return out_dir / f"shard-{index:05d}.npy", out_dir / f"shard-{index:05d}.ids.json"


def _records(texts: Iterable[str | tuple[str, str]]) -> Iterator[tuple[str, str]]:
    for number, item in enumerate(texts):
        if isinstance(item, str):
            yield str(number), item
        else:
            item_id, text = item
            item_id = str(item_id)
            if "\n" in item_id or "\r" in item_id:
                raise DataError(f"text id {item_id!r} (item {number}) contains a line break")
            yield item_id, text


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


def _add_shard(manifest: dict[str, Any], index: int, count: int, dim: int) -> None:
    vectors_path, ids_path = shard_paths(Path(), index)
    manifest["shards"] = [entry for entry in manifest["shards"] if entry["index"] != index]
    manifest["shards"].append({"index": index, "file": vectors_path.name, "ids": ids_path.name, "count": count,
                               "dim": int(dim)})
    manifest["shards"].sort(key=lambda entry: entry["index"])


def encode_to_shards(encoder: Encoder, texts: Iterable[str | tuple[str, str]], out_dir: str | Path,
                     shard_size: int = 100_000, dtype: str = "float16", *, prefix: str = "",
                     max_length: int | None = None, batch_size: int = 32, show_progress: bool = True) -> Path:
    """Encode ``texts`` (strings, or ``(id, text)`` pairs; a string's id is its position) into ``out_dir``.

    Returns ``out_dir``. A finished directory is returned at once; a partial one is resumed; one written with
    other settings (encoder fingerprint, prefix, max length, shard size, dtype) is a ConfigError. The embedding
    cache is bypassed (the shards are the cache here), so a cached encoder's inner encoder does the work.
    """
    from polyret.encode.cache import CachedEncoder

    if shard_size < 1:
        raise ConfigError(f"shard_size must be positive, got {shard_size}")
    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    out = Path(out_dir)
    worker = encoder.inner if isinstance(encoder, CachedEncoder) else encoder
    settings = {"fingerprint": encoder.fingerprint, "prefix": prefix, "max_length": max_length,
                "shard_size": shard_size, "dtype": dtype}
    manifest_path = out / MANIFEST
    manifest: dict[str, Any] = {"settings": settings, "encoder": None, "shards": [], "complete": False}
    if manifest_path.is_file():
        previous = read_json(manifest_path)
        if previous.get("settings") != settings:
            raise ConfigError(f"{out} holds shards written with other settings ({previous.get('settings')}); "
                              f"use another folder or delete it to start again")
        if previous.get("complete"):
            return out
        manifest = previous
    out.mkdir(parents=True, exist_ok=True)
    # a SIGKILLed run leaves atomic_write's temp files (no cleanup runs); they are never complete outputs
    for stale in out.glob(".*.tmp"):
        stale.unlink(missing_ok=True)

    all_ids: list[str] = []
    records = _records(texts)
    for index in itertools.count():
        chunk = list(itertools.islice(records, shard_size))
        if not chunk:
            break
        ids = [item_id for item_id, _ in chunk]
        done = _shard_done(out, index, len(chunk))
        if done is not None:
            if done != ids:
                raise DataError(f"{shard_paths(out, index)[1]}: the input changed since this shard was written "
                                f"(ids differ); use another folder or delete it to start again")
            all_ids.extend(ids)
            if not any(entry["index"] == index for entry in manifest["shards"]):  # killed before the manifest
                _add_shard(manifest, index, len(chunk), np.load(shard_paths(out, index)[0], mmap_mode="r").shape[1])
            continue
        vectors = worker.encode([text for _, text in chunk], prefix=prefix, max_length=max_length,
                                batch_size=batch_size, show_progress=show_progress)
        vectors_path, ids_path = shard_paths(out, index)
        with atomic_write(vectors_path, "wb") as handle:
            np.save(handle, np.asarray(vectors).astype(dtype, copy=False))
        write_json(ids_path, ids)
        all_ids.extend(ids)
        manifest["encoder"] = manifest.get("encoder") or worker.describe()
        _add_shard(manifest, index, len(chunk), np.asarray(vectors).shape[1])
        write_json(manifest_path, manifest)

    with atomic_write(out / IDS_FILE) as handle:
        handle.writelines(f"{item_id}\n" for item_id in all_ids)
    n_shards = -(-len(all_ids) // shard_size)
    manifest["shards"] = [entry for entry in manifest["shards"] if entry["index"] < n_shards]
    manifest.update(complete=True, count=len(all_ids), n_shards=n_shards,
                    dim=manifest["shards"][0]["dim"] if manifest["shards"] else None)
    if manifest.get("encoder") is None:
        manifest["encoder"] = worker.describe()
    write_json(manifest_path, manifest)
    return out


def load_shards(out_dir: str | Path, mmap: bool = True) -> tuple[list[str], list[np.ndarray]]:
    """The ids and the per-shard arrays (memory-mapped by default) of a finished :func:`encode_to_shards` run."""
    out = Path(out_dir)
    manifest = read_json(out / MANIFEST)
    if not manifest.get("complete"):
        raise DataError.at(out / MANIFEST, None, "the sharded encoding is not finished; run it again to resume")
    ids = (out / IDS_FILE).read_text(encoding="utf-8").splitlines()
    arrays = [np.load(out / entry["file"], mmap_mode="r" if mmap else None) for entry in manifest["shards"]]
    if sum(len(array) for array in arrays) != len(ids):
        raise DataError.at(out / IDS_FILE, None, "id count differs from the number of rows in the shards")
    return ids, arrays
