"""Reader for BUCC 2018 bitext mining files (PROTOCOLS §3.3).

Layout as the official archives extract (``bucc2018-{xx}-en.{split}-gold.tar.bz2``): ``bucc2018/{xx}-en/`` holds
``{xx}-en.{split}.{xx}`` and ``{xx}-en.{split}.en`` (lines ``ID<TAB>sentence``) and ``{xx}-en.{split}.gold``
(lines ``xxID<TAB>enID``), for ``split`` in ``sample`` (used as dev) and ``training`` (used as test; the official
test gold is not public). The files may also sit directly in the folder given as ``root``.

Mining works on texts, so each side is deduplicated; a text that carries several IDs is dropped from the
text→ID map (as XTREME's reference code does): a mined pair involving it cannot be mapped to an ID pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from polyret.data.languages import benchmark_code
from polyret.errors import DataError
from polyret.io import data_dir, iter_lines

BUCC_LANGS: tuple[str, ...] = ("de", "fr", "ru", "zh")
SPLITS: tuple[str, ...] = ("sample", "training")
DOWNLOAD_HINT = (
    "download bucc2018-{xx}-en.sample-gold.tar.bz2 and bucc2018-{xx}-en.training-gold.tar.bz2 from "
    "https://comparable.limsi.fr/bucc2018/ and extract them under {root} (or set POLYRET_DATA_DIR)"
)


@dataclass(frozen=True)
class BuccSide:
    """One side of a split in file order: ``ids[i]`` labels ``texts[i]``."""

    ids: list[str]
    texts: list[str]
    path: Path | None = None

    def text_to_id(self) -> dict[str, str]:
        """Text → ID for texts carrying exactly one ID (texts with several IDs are dropped)."""
        mapping: dict[str, str] = {}
        repeated: set[str] = set()
        for ident, text in zip(self.ids, self.texts, strict=True):
            if text in mapping:
                repeated.add(text)
            else:
                mapping[text] = ident
        for text in repeated:
            del mapping[text]
        return mapping


@dataclass(frozen=True)
class BuccSplit:
    """One language pair and split: the xx side, the English side and the gold ID pairs."""

    lang: str
    split: str
    xx: BuccSide
    en: BuccSide
    gold: set[tuple[str, str]] = field(default_factory=set)


def bucc_dir(root: str | Path | None = None) -> Path:
    """``<root>`` if given, else ``<data_dir>/bucc2018``."""
    return Path(root) if root is not None else data_dir() / "bucc2018"


def bucc_code(lang: str) -> str:
    """``lang`` as the code in BUCC's file names (:func:`polyret.data.languages.benchmark_code`)."""
    return benchmark_code(lang, "BUCC", BUCC_LANGS)


def _file(root: Path, lang: str, split: str, suffix: str) -> Path:
    name = f"{lang}-en.{split}.{suffix}"
    for candidate in (root / f"{lang}-en" / name, root / name, root / "bucc2018" / f"{lang}-en" / name):
        if candidate.exists():
            return candidate
    raise DataError.at(
        root / f"{lang}-en" / name, None, "BUCC file not found; " + DOWNLOAD_HINT.format(xx=lang, root=root)
    )


def has_language(lang: str, root: str | Path | None = None) -> bool:
    """Whether every file of both splits of ``lang`` is there."""
    folder = bucc_dir(root)
    try:
        for split in SPLITS:
            for suffix in (lang, "en", "gold"):
                _file(folder, lang, split, suffix)
    except DataError:
        return False
    return True


def _read_tsv(path: Path, columns: int) -> list[tuple[int, list[str]]]:
    """(line number, fields) of the non-blank lines of ``path``, split on the first ``columns - 1`` tabs; a malformed
    line raises DataError with its number."""
    rows: list[tuple[int, list[str]]] = []
    for number, text in iter_lines(path, blank_lines="skip"):
        parts = text.split("\t", columns - 1)
        if len(parts) != columns or not all(part.strip() for part in parts):
            expected = "ID<TAB>sentence" if columns == 2 and not path.name.endswith(".gold") else "xxID<TAB>enID"
            raise DataError.at(path, number, f"expected {expected}, got {text[:60]!r}")
        rows.append((number, [part.strip() for part in parts]))
    return rows


def read_side(path: str | Path) -> BuccSide:
    """An ``ID<TAB>sentence`` file; duplicate IDs and malformed lines raise DataError with file:line."""
    source = Path(path)
    ids: list[str] = []
    texts: list[str] = []
    seen: dict[str, int] = {}
    for number, (ident, text) in _read_tsv(source, 2):
        if ident in seen:
            raise DataError.at(source, number, f"ID {ident!r} repeats (first on line {seen[ident]})")
        seen[ident] = number
        ids.append(ident)
        texts.append(text)
    return BuccSide(ids, texts, source)


def read_gold(path: str | Path) -> set[tuple[str, str]]:
    """An ``xxID<TAB>enID`` file as a set of ID pairs."""
    return {(xx, en) for _, (xx, en) in _read_tsv(Path(path), 2)}


def read_bucc_split(lang: str, split: str, root: str | Path | None = None) -> BuccSplit:
    """Read ``{lang}-en.{split}.{lang|en|gold}``; gold IDs missing from the sides raise DataError."""
    if split not in SPLITS:
        raise DataError(f"unknown BUCC split {split!r}; valid: {', '.join(SPLITS)}")
    lang = bucc_code(lang)
    folder = bucc_dir(root)
    xx = read_side(_file(folder, lang, split, lang))
    en = read_side(_file(folder, lang, split, "en"))
    gold_path = _file(folder, lang, split, "gold")
    gold = read_gold(gold_path)
    xx_ids, en_ids = set(xx.ids), set(en.ids)
    for xx_id, en_id in sorted(gold):
        if xx_id not in xx_ids or en_id not in en_ids:
            raise DataError.at(gold_path, None, f"gold pair {xx_id} {en_id} names an ID absent from the sentence files")
    return BuccSplit(lang, split, xx, en, gold)


def read_bucc(
    languages: Sequence[str] = BUCC_LANGS, root: str | Path | None = None
) -> dict[str, tuple[BuccSplit, BuccSplit]]:
    """``{lang: (dev = sample, test = training)}`` for every language, all files checked before returning."""
    codes = [bucc_code(lang) for lang in languages]  # every name checked before any file is read
    return {lang: (read_bucc_split(lang, "sample", root), read_bucc_split(lang, "training", root)) for lang in codes}
