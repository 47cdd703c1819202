"""What identifies a model folder's weights, cheaply: the key of the embedding cache and of every result.

A fingerprint hashes :func:`weights_identity` (per file: a content hash when the name is one, else size, mtime and
sampled bytes) with every setting that changes the vectors, so a retrained or re-pooled model never reads another's
cached embeddings. Shared by every encoder kind (sentence-transformers, seq2seq).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

#: a seq2seq model folder's description of itself (read by encode/seq2seq.py, and by train/runs.py for the kept
#: step: here, so that reading a run's record loads no numpy)
SIDECAR = "polyret_seq2seq.json"

FINGERPRINT_VERSION = 1
_SKIP_DIRS = ("checkpoint-", "onnx", "openvino", "runs", "eval", "logs")
_SAMPLE_BYTES = 1 << 16


def weights_identity(path: str | Path) -> list[tuple[str, str]]:
    """A cheap identity of the files of a model folder: per file, its content hash when the name is one
    (Hugging Face cache blobs), else size + mtime + a hash of sampled bytes. Changing any weight rewrites the
    file and so changes its mtime; the samples catch copies that keep mtimes."""
    root = Path(path)
    if not root.is_dir():
        return [("id", str(path))]
    rows: list[tuple[str, str]] = []
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not d.startswith(_SKIP_DIRS))
        for name in sorted(files):
            if name.startswith("."):
                continue
            file = Path(current) / name
            rows.append((file.relative_to(root).as_posix(), _file_identity(file)))
    return rows


def _file_identity(file: Path) -> str:
    real = file.resolve()
    if file.is_symlink() and real.parent.name == "blobs":  # Hugging Face cache: blobs are named by content hash
        return f"blob:{real.name}"
    stat = real.stat()
    digest = hashlib.blake2b(digest_size=8)
    with real.open("rb") as handle:
        for offset in sorted({0, stat.st_size // 3, 2 * stat.st_size // 3, max(stat.st_size - _SAMPLE_BYTES, 0)}):
            handle.seek(offset)
            digest.update(handle.read(_SAMPLE_BYTES))
    return f"{stat.st_size}:{stat.st_mtime_ns}:{digest.hexdigest()}"


def weights_fingerprint(path: str | Path, settings: dict[str, Any]) -> str:
    """Hex digest of :func:`weights_identity` plus every setting that changes the vectors."""
    payload = json.dumps(
        {"v": FINGERPRINT_VERSION, "files": weights_identity(path), "settings": settings},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()
