"""Model resolution: an embedded name, a local folder or a Hugging Face id, to something a loader can open.

``resolve_model`` never reaches the network itself. An embedded name is prepared on demand (offline); a local
folder is checked; a Hugging Face id resolves to its snapshot in the local Hugging Face cache when one is there.
An id that is not cached resolves to the id itself only when the Hub is reachable; offline (``HF_HUB_OFFLINE``
or ``TRANSFORMERS_OFFLINE`` set, or no route to the Hub) it fails at once with one line that says how to provide
the model, instead of the loader's retries and long stack trace.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from polyret.encode.embedded import EMBEDDED_MODELS, MARKER_FILE, prepare_embedded_model
from polyret.errors import ModelError

# Hugging Face ids the project uses; any other id works the same way.
KNOWN_HF_IDS = (
    "intfloat/multilingual-e5-small",
    "xlm-roberta-base",
    "sentence-transformers/LaBSE",
    "facebook/mbart-large-50",
)
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_TRUE = {"1", "true", "yes", "on"}
_REACHABLE_TIMEOUT_S = 2.0


def resolve_model(name: str) -> Path | str:
    """Where to load ``name`` from: a local folder (``Path``), or a Hugging Face id (``str``) to download.

    Embedded names (``polyret models list``) are prepared on first use. Raises ModelError, on one line, when
    the model cannot be provided: a missing folder, or an uncached id while offline.
    """
    name = str(name).strip()
    if not name:
        raise ModelError("empty model name; give an embedded name (e.g. multilingual-e5-small), a folder or an id")
    if name in EMBEDDED_MODELS:
        return prepare_embedded_model(name)
    path = Path(name).expanduser()
    if path.exists():
        return _check_folder(path)
    if _looks_like_path(name) or not _HF_ID.match(name):
        raise ModelError(f"model folder {name} not found (not an embedded model or a Hugging Face id either)")
    snapshot = cached_snapshot(name)
    if snapshot is not None:
        return snapshot
    if hub_offline() or not hub_reachable():
        raise ModelError(_offline_message(name))
    return name


def _check_folder(path: Path) -> Path:
    if not path.is_dir():
        raise ModelError(f"{path}: a model must be a folder (sentence-transformers or Hugging Face), not a file")
    if not any((path / marker).is_file() for marker in ("modules.json", "config.json")):
        raise ModelError(f"{path}: not a model folder (no modules.json or config.json in it)")
    return path.resolve()


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _offline_message(name: str) -> str:
    close = difflib.get_close_matches(name, [*EMBEDDED_MODELS, *KNOWN_HF_IDS], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    embedded = next(iter(EMBEDDED_MODELS))
    return (
        f"model {name!r} is not in the local Hugging Face cache and the Hub cannot be reached (offline){hint}; "
        f"use the embedded model (`polyret models prepare {embedded}`, then --model {embedded}), "
        f"a local model folder, or go online (unset HF_HUB_OFFLINE) so it can be downloaded"
    )


def hub_offline() -> bool:
    """True when the environment says not to use the Hub (read at call time, not at import)."""
    return any(os.environ.get(var, "").strip().lower() in _TRUE for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout: float = _REACHABLE_TIMEOUT_S) -> bool:
    """One TCP connect to the Hub endpoint, bounded by ``timeout`` even while name resolution hangs."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, from the environment at call time."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def cached_snapshot(repo_id: str, revision: str = "main") -> Path | None:
    """The snapshot folder of ``repo_id`` in the local Hugging Face cache, if a usable one is there."""
    repo = hf_cache_dir() / f"models--{repo_id.replace('/', '--')}"
    commit = revision
    ref = repo / "refs" / revision
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
    candidates = [repo / "snapshots" / commit]
    if not candidates[0].is_dir() and (repo / "snapshots").is_dir():  # no ref file: take the newest snapshot
        candidates = sorted((repo / "snapshots").iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for snapshot in candidates:
        if snapshot.is_dir() and any((snapshot / m).is_file() for m in ("modules.json", "config.json")):
            return snapshot
    return None


def revision_of(path: Path) -> str | None:
    """The commit of a Hugging Face cache snapshot, or the source release of a prepared embedded model."""
    if path.parent.name == "snapshots":
        return path.name
    marker = path / MARKER_FILE
    if marker.is_file():
        try:
            weights = json.loads(marker.read_text(encoding="utf-8"))["weights"]
            return f"{weights['pip']} {weights['file']} sha256:{weights['sha256'][:16]}"
        except (OSError, ValueError, KeyError):
            return None
    return None
