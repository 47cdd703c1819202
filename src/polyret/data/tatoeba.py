"""Reader for the LASER/XTREME Tatoeba test set v1 (PROTOCOLS.md §3.2).

Files live under ``<data_dir>/tatoeba/v1/`` as ``tatoeba.{code}-eng.{code}`` and ``tatoeba.{code}-eng.eng``; line ``i``
of one translates line ``i`` of the other, so gold is the identity. The raw files are read as they are: no sorting,
stripping only the line ending, no deduplication (XTREME's preprocessing sorts the English side; we don't).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polyret.data.languages import get_language, tatoeba_code
from polyret.errors import DataError, UnknownNameError
from polyret.io import data_dir, read_lines

TATOEBA_SUBDIR = Path("tatoeba") / "v1"


@dataclass(frozen=True)
class TatoebaPair:
    """One language's test pair: ``xx[i]`` translates ``en[i]``; ``lang`` is the internal code, ``path`` the xx file."""

    lang: str
    xx: list[str]
    en: list[str]
    path: Path

    def __len__(self) -> int:
        return len(self.xx)


def tatoeba_dir(root: str | Path | None = None) -> Path:
    """``<root>/tatoeba/v1`` with ``root`` defaulting to :func:`polyret.io.data_dir`."""
    return Path(root if root is not None else data_dir()) / TATOEBA_SUBDIR


def available_codes(root: str | Path | None = None) -> list[str]:
    """The Tatoeba file codes present under ``root`` (both files of the pair must exist)."""
    folder = tatoeba_dir(root)
    codes = {path.name.split(".")[1].removesuffix("-eng") for path in folder.glob("tatoeba.*-eng.eng")}
    return sorted(code for code in codes if (folder / f"tatoeba.{code}-eng.{code}").exists())


def read_tatoeba_pair(lang: str, root: str | Path | None = None) -> TatoebaPair:
    """Read one language's pair (any code :func:`~polyret.data.languages.get_language` accepts, incl. file codes).

    Raises :class:`UnknownNameError` (listing the available codes) when no file pair exists for ``lang``, and
    :class:`DataError` for unreadable, non-UTF-8, empty or misaligned files.
    """
    folder = tatoeba_dir(root)
    try:
        language = get_language(lang)
    except UnknownNameError:
        raise UnknownNameError("Tatoeba language", lang, available_codes(root)) from None
    code = tatoeba_code(language)
    xx_path = folder / f"tatoeba.{code}-eng.{code}"
    en_path = folder / f"tatoeba.{code}-eng.eng"
    if not en_path.exists() and not xx_path.exists():
        if not folder.is_dir():
            raise DataError.at(
                folder,
                None,
                "Tatoeba folder not found; set POLYRET_DATA_DIR to a copy of the "
                "benchmark data or run `polyret data prepare tatoeba`",
            )
        raise UnknownNameError("Tatoeba language", lang, available_codes(root))
    # blank lines are kept so that line numbers stay aligned across the pair; an empty sentence is an error below
    xx, en = read_lines(xx_path, blank_lines="keep"), read_lines(en_path, blank_lines="keep")
    if not xx:
        raise DataError.at(xx_path, None, "empty file")
    if len(xx) != len(en):
        raise DataError.at(
            en_path, min(len(xx), len(en)) + 1, f"misaligned pair: {len(en)} lines here but {len(xx)} in {xx_path.name}"
        )
    for path, lines in ((xx_path, xx), (en_path, en)):
        empty = next((number for number, line in enumerate(lines, start=1) if not line.strip()), None)
        if empty is not None:
            raise DataError.at(path, empty, "empty sentence")
    return TatoebaPair(lang=language.code, xx=xx, en=en, path=xx_path)
