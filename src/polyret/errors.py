"""User-facing errors: one line that names the file, line or fix.

Library code raises :class:`PolyretError` (or a subclass) for anything a user can fix; the CLI prints
its message on one line and exits with status 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class PolyretError(Exception):
    """An error the user can fix; ``str(err)`` is a single line that says how."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class DataError(PolyretError):
    """A data file is missing, unreadable or malformed."""

    @classmethod
    def at(cls, path: str | Path, line: int | None, problem: str) -> DataError:
        where = f"{path}:{line}" if line is not None else str(path)
        return cls(f"{where}: {problem}")


class ConfigError(PolyretError):
    """A config file or option is invalid."""


class OutputError(PolyretError):
    """An output file or folder cannot be written (read-only, a file in the way, a full disk)."""


class ModelError(PolyretError):
    """A model cannot be found or loaded."""


class UnknownNameError(PolyretError):
    """An unknown task, language, method or similar name; the message lists the valid ones."""

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]) -> None:
        shown = ", ".join(sorted(valid)[:60]) + (" …" if len(valid) > 60 else "")
        super().__init__(f"unknown {kind} {name!r}; valid: {shown}")
