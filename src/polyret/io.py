"""Paths and crash-safe file output shared by every stage.

Every result, manifest and checkpoint goes through :func:`atomic_write` (temp file in the same
directory, fsync, rename), so a killed run leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from polyret.errors import ConfigError, DataError

SHARED_DATA_CANDIDATES = ("../shared/data", "../../shared/data")


def polyret_home() -> Path:
    """Cache root for prepared models, data and embeddings (``$POLYRET_HOME``, else ``~/.cache/polyret``)."""
    return Path(os.environ.get("POLYRET_HOME") or Path.home() / ".cache" / "polyret").expanduser()


def data_dir() -> Path:
    """Benchmark data root: ``$POLYRET_DATA_DIR``, else a ``shared/data`` beside the checkout, else the cache.

    The repository never holds benchmark files; ``polyret data prepare NAME`` fills the cache when
    the network is up.
    """
    configured = os.environ.get("POLYRET_DATA_DIR")
    if configured:
        return Path(configured).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    for relative in SHARED_DATA_CANDIDATES:
        candidate = (checkout / relative).resolve()
        if candidate.is_dir():
            return candidate
    return polyret_home() / "data"


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temp file next to ``path``; on success fsync and rename it over ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            # mkstemp creates 0600 files; give results the permissions a plain open() would.
            os.fchmod(handle.fileno(), 0o666 & ~_current_umask())
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def timestamp() -> str:
    """Now, as every record polyret writes stamps it: UTC, ISO 8601, seconds (``2026-11-25T16:00:00+00:00``)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def write_json(path: str | Path, payload: Any) -> None:
    """Atomically write ``payload`` as indented UTF-8 JSON."""
    with atomic_write(path) as handle:
        json.dump(payload, handle, ensure_ascii=False, indent=2, sort_keys=False)
        handle.write("\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file, turning a parse error into a one-line error with file and line."""
    source = Path(path)
    try:
        with source.open(encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as err:
        raise DataError.at(source, None, "file not found") from err
    except UnicodeDecodeError as err:
        raise DataError.at(source, None, f"not UTF-8 text ({err.reason} at byte {err.start})") from err
    except json.JSONDecodeError as err:
        raise DataError.at(source, err.lineno, f"malformed JSON: {err.msg} (column {err.colno})") from err


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """Parse a YAML file; a missing file, bad encoding or syntax error is one line naming the file (and line)."""

    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: {what} not found") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{source}: not UTF-8 text (byte {err.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else str(source)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: malformed YAML: {problem}") from None
