"""Paths, text input and crash-safe output shared by every stage.

* Input: :func:`iter_lines` / :func:`read_lines` are the one way polyret reads a UTF-8 text file line by line.
* Output: every result, manifest and checkpoint goes through :func:`atomic_write` (temp file in the same
  directory, fsync, rename), every model or other folder through :func:`write_dir_atomically`, so a killed run
  leaves either the old copy or the new one, never half of one. :func:`check_writable` is the pre-flight the
  CLI runs on every output before any work; a write that fails anyway (a full disk) is one
  :class:`~polyret.errors.OutputError` line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import yaml

from polyret.errors import ConfigError, DataError, OutputError, PolyretError

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
    """Open a temp file next to ``path``; on success fsync and rename it over ``path``.

    A failure to create or finish the file (read-only folder, full disk) is an :class:`OutputError` naming
    ``path``; the temp file is removed and an existing ``path`` is left as it was.
    """
    target = Path(path)
    tmp_name: str | None = None
    in_caller = False  # an OSError raised by the caller's block may be about its input, not this output
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            in_caller = True
            yield handle
            in_caller = False
            handle.flush()
            # mkstemp creates 0600 files; give results the permissions a plain open() would.
            os.fchmod(handle.fileno(), 0o666 & ~_current_umask())
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except OSError as err:
        _discard(tmp_name)
        if not in_caller or _is_write_failure(err, target):
            raise output_error(target, err) from err
        raise
    except BaseException:
        _discard(tmp_name)
        raise


def _discard(tmp_name: str | None) -> None:
    if tmp_name is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


# Below this much free space a write error without an errno (numpy's "N requested and M written") is a full disk.
_NEARLY_FULL_BYTES = 64 * 1024 * 1024


def _is_write_failure(err: OSError, target: Path) -> bool:
    """Whether ``err`` (raised while the temp file was open) is the output failing rather than the caller's input."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
        return True
    if err.errno is None:
        with contextlib.suppress(OSError):
            return shutil.disk_usage(target.parent).free < _NEARLY_FULL_BYTES
    return False


def output_error(path: str | Path, err: OSError) -> PolyretError:
    """The one-line error for an output that cannot be written, saying what to do about it."""
    target = Path(path)
    if err.errno in (errno.ENOSPC, errno.EDQUOT) or (err.errno is None and _is_write_failure(err, target)):
        return OutputError(f"{target}: cannot write (no space left on the device); free some space and run again")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"{target}: cannot write (permission denied); choose a writable location")
    if err.errno in (errno.ENOTDIR, errno.EEXIST):
        return OutputError(f"{target}: cannot write (a file is in the way where a folder is needed)")
    return OutputError(f"{target}: cannot write ({err.strerror or err})")


def check_writable(
    path: str | Path, *, folder: bool = False, what: str = "output", fix: str = "choose a writable location"
) -> None:
    """Fail now, in one line, if ``path`` (a file, or a ``folder``) cannot be written later.

    Checks what a later write would meet: an existing path of the wrong kind, a file where a parent folder has to
    be, and whether the nearest existing folder accepts a new file (probed by creating one: permission bits say
    nothing about root, read-only mounts or ACLs). Nothing is created except the probe, which is removed.
    """
    target = Path(path).expanduser()
    if target.exists() and target.is_dir() != folder:
        kind = "a folder" if target.is_dir() else "a file"
        raise OutputError(f"{target}: {what} is {kind}; give a {'folder' if folder else 'file'} path")
    existing = target if folder and target.is_dir() else target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{target}: {existing} is a file, so the {what} folder cannot be created there")
    try:
        fd, probe = tempfile.mkstemp(prefix=".polyret-write-check.", dir=existing)
    except OSError as err:
        raise OutputError(f"{target}: {what} is not writable ({existing}: {err.strerror or err}); {fix}") from None
    os.close(fd)
    os.unlink(probe)


def write_dir_atomically(
    target: str | Path, fill: Callable[[Path], object], *, keep_existing: Callable[[Path], bool] | None = None
) -> Path:
    """Let ``fill`` write a temporary sibling of ``target``, then rename it into place; return ``target``.

    ``target`` is complete or absent, never half-written: an old copy is renamed aside and deleted only after the
    new one is in place, and a failing ``fill`` leaves the old copy untouched and no temporary folder behind.
    When ``keep_existing(target)`` is true once the new copy is ready (another process finished the same folder
    meanwhile, and may be reading it), that copy stays and the new one is discarded.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    except OSError as err:
        raise output_error(target, err) from err
    try:
        fill(staging)
        if keep_existing is not None and target.exists() and keep_existing(target):
            return target
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent)) / target.name
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old.parent, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def timestamp() -> str:
    """Now, as every record polyret writes stamps it: UTC, ISO 8601, seconds (``2026-11-25T16:00:00+00:00``)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def iter_lines(
    path: str | Path, *, blank_lines: Literal["keep", "skip"], errors: Literal["strict", "replace"] = "strict"
) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line of a UTF-8 text file (``.gz`` read through gzip), read lazily.

    Lines end at ``\\n`` only (never at U+2028, U+0085 or a form feed, which ``str.splitlines`` would split on, nor
    at a lone ``\\r``); one trailing ``\\r`` is dropped. Numbers count every physical line from 1, blank or not,
    so they match an editor's. Each line is decoded on its own, so a bad byte is a :class:`DataError` naming
    ``file:line`` (``errors="replace"`` substitutes U+FFFD instead). ``blank_lines="skip"`` leaves out lines that
    are empty or white space only; ``"keep"`` yields them, for readers where a blank line is an error or a value.
    """
    source = Path(path)
    try:
        # opened here so an unopenable file is one error; the ``with`` below closes it
        handle = gzip.open(source, "rb") if source.suffix == ".gz" else source.open("rb")  # noqa: SIM115
    except FileNotFoundError:
        raise DataError.at(source, None, "file not found") from None
    except IsADirectoryError:
        raise DataError.at(source, None, "is a folder, not a text file") from None
    except OSError as err:
        raise DataError.at(source, None, f"unreadable ({err.strerror or err})") from None
    with handle:
        number = 0
        while True:
            try:
                raw = handle.readline()
            except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError; a cut-off gzip an EOFError
                raise DataError.at(source, number + 1, f"unreadable ({err})") from None
            if not raw:
                return
            number += 1
            try:
                text = raw.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8", errors)
            except UnicodeDecodeError as err:
                raise DataError.at(source, number, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
            if blank_lines == "keep" or text.strip():
                yield number, text


def read_lines(path: str | Path, *, blank_lines: Literal["keep", "skip"]) -> list[str]:
    """Every line of a UTF-8 text file, as :func:`iter_lines` reads them."""
    return [text for _, text in iter_lines(path, blank_lines=blank_lines)]


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
