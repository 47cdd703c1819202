"""Bilingual word pairs for targeted lexical injection (TLI): readers, filtering and a leak-free split.

Use :func:`load_word_pairs` to get pairs from either a ``src<TAB>tgt`` TSV file or an installed FreeDict
dictionary (Debian package ``dict-freedict-<src>-<tgt>``, dictd format), and :func:`split_word_pairs` to get the
train/control split that TLI measures transfer on.

FreeDict filtering (what counts as a *clean single-word pair*), applied per dictionary entry:

1. ``00database*`` metadata entries are skipped; entries shared by several index headwords are read once.
2. The entry's first line is ``headword[, variant] /ipa/ <pos, ...> ...``. Only the first headword is used; it must
   be one lowercase word (letters, optionally joined by an apostrophe as in Swahili *ng'ombe*). Capitalised headwords
   (proper nouns, months, countries, mostly cognates) are dropped.
3. Where the entry has a part-of-speech tag (swh-eng does, afr-eng does not), only content words are kept: the first
   tag is ``n``, ``v``, ``adj`` or ``adv`` (pronouns, copulas, prepositions, conjunctions, numerals are dropped).
4. Generated plural entries (``Plural of {x}: ...``) are dropped: their gloss translates the singular.
5. The translation is the first single-word equivalent on the first definition line of the first sense (sense number
   ``1.`` stripped; equivalents separated by ``,`` or ``;``); multi-word glosses (``get tired``) and glosses with
   brackets are not used.
6. Both sides are lowercased; a pair whose two sides are the same string (loanwords) is dropped, as it carries no
   lexical signal; each source word keeps its first pair.
"""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from polyret.data.languages import Language, get_language
from polyret.errors import DataError, UnknownNameError
from polyret.io import atomic_write

DICTD_DIR = Path("/usr/share/dictd")
# dictd's own base64 digit order (dictd/index.c); offsets and lengths are big-endian numbers in it.
DICTD_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {char: value for value, char in enumerate(DICTD_B64)}
CONTENT_POS = frozenset({"n", "v", "adj", "adv"})
_WORD = re.compile(r"^[^\W\d_]+(?:'[^\W\d_]+)*$")
_HEADWORD_LINE = re.compile(r"^(?P<heads>[^/<]+?)\s*(?:/[^/]*/\s*)*(?:<(?P<pos>[^>]*)>.*)?$")
_SENSE_NUMBER = re.compile(r"^\d+\.\s*")


@dataclass(frozen=True)
class WordPair:
    """One translation pair: ``source`` in the low-resource language, ``target`` in the pivot (English)."""

    source: str
    target: str


@dataclass(frozen=True)
class WordSplit:
    """Train pairs and held-out control pairs; no word (source or target) occurs on both sides."""

    train: tuple[WordPair, ...]
    control: tuple[WordPair, ...]


@dataclass(frozen=True)
class DictdEntry:
    """One dictd article: the index headword and the raw article text."""

    headword: str
    text: str


def read_word_pairs_tsv(path: str | Path) -> list[WordPair]:
    """Read ``source<TAB>target`` lines (blank lines and ``#`` comments skipped) as given, without filtering."""
    source_path = Path(path)
    try:
        lines = source_path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as err:
        raise DataError.at(source_path, None, "file not found") from err
    except UnicodeDecodeError as err:
        raise DataError.at(source_path, None, f"not UTF-8 text ({err.reason} at byte {err.start})") from err
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise DataError.at(source_path, number, f"expected 'source<TAB>target', got {line[:80]!r}")
        pairs.append(WordPair(fields[0].strip(), fields[1].strip()))
    return pairs


def _decode_b64(text: str) -> int:
    value = 0
    for char in text:
        value = value * 64 + _B64_VALUE[char]
    return value


def read_dictd(index_path: str | Path, dict_path: str | Path | None = None) -> list[DictdEntry]:
    """Read a dictd dictionary (``.index`` + ``.dict.dz`` or plain ``.dict``), one entry per index line.

    Index lines are ``headword<TAB>offset<TAB>length`` with offset and length in dictd base64; the ``.dict.dz``
    is dictzip, which is gzip with a random-access header, so the gzip module reads it whole.
    """
    index = Path(index_path)
    if dict_path is None:
        stem = index.name.removesuffix(".index")
        candidates = [index.with_name(f"{stem}.dict.dz"), index.with_name(f"{stem}.dict")]
        dict_path = next((path for path in candidates if path.exists()), candidates[0])
    body_path = Path(dict_path)
    try:
        index_lines = index.read_text(encoding="utf-8").splitlines()
        raw = body_path.read_bytes()
    except FileNotFoundError as err:
        raise DataError.at(err.filename, None, "file not found") from err
    except UnicodeDecodeError as err:
        raise DataError.at(index, None, f"not UTF-8 text ({err.reason} at byte {err.start})") from err
    try:
        body = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (EOFError, OSError) as err:  # gzip.BadGzipFile is an OSError
        raise DataError.at(body_path, None, f"corrupt dictzip/gzip data ({err})") from err
    entries = []
    for number, line in enumerate(index_lines, start=1):
        fields = line.split("\t")
        # An empty headword occurs in real FreeDict indexes (afr-eng); offset and length may not be empty.
        if len(fields) != 3 or not all(fields[1:]) or not set(fields[1] + fields[2]) <= _B64_VALUE.keys():
            raise DataError.at(index, number, f"expected 'headword<TAB>b64offset<TAB>b64length', got {line[:80]!r}")
        offset, length = _decode_b64(fields[1]), _decode_b64(fields[2])
        if offset + length > len(body):
            raise DataError.at(index, number, f"entry {fields[0]!r} points past the end of {body_path.name}")
        try:
            text = body[offset : offset + length].decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError.at(index, number, f"entry {fields[0]!r} is not UTF-8 text") from err
        entries.append(DictdEntry(fields[0], text))
    return entries


def _first_sense_line(lines: Sequence[str]) -> str | None:
    """The first definition line without its sense number; indented lines are notes and cross-references."""
    for line in lines:
        gloss = _SENSE_NUMBER.sub("", line.strip()) if line and not line[0].isspace() else ""
        if gloss:
            return gloss
    return None


def _entry_pair(entry: DictdEntry) -> WordPair | None:
    """The clean single-word pair of one FreeDict entry, or None (rules in the module docstring)."""
    if "Plural of {" in entry.text:
        return None
    lines = entry.text.split("\n")
    match = _HEADWORD_LINE.match(lines[0])
    if not match:
        return None
    source = match["heads"].split(",")[0].strip()
    pos = (match["pos"] or "").split(",")[0].strip()
    if (match["pos"] is not None and pos not in CONTENT_POS) or not _WORD.match(source) or source != source.lower():
        return None
    gloss = _first_sense_line(lines[1:])
    if gloss is None:
        return None
    for candidate in re.split(r"[,;]", gloss):
        target = candidate.strip().lower()
        if _WORD.match(target):
            return WordPair(source, target) if target != source else None
    return None


def extract_word_pairs(entries: Iterable[DictdEntry]) -> list[WordPair]:
    """Clean single-word pairs from FreeDict entries, one per source word, in dictionary order."""
    pairs: dict[str, WordPair] = {}
    seen_texts: set[str] = set()
    for entry in entries:
        if entry.headword.startswith("00database") or entry.headword.startswith("00-database"):
            continue
        if entry.text in seen_texts:
            continue
        seen_texts.add(entry.text)
        pair = _entry_pair(entry)
        if pair is not None and pair.source not in pairs:
            pairs[pair.source] = pair
    return list(pairs.values())


def _freedict_code_candidates(language: Language) -> list[str]:
    # FreeDict names files by individual-language ISO 639-3 codes (swh, not the macrolanguage swa); Tatoeba's
    # codes follow the same convention, so try them first.
    return list(dict.fromkeys(code for code in (language.tatoeba, language.iso3) if code))


def freedict_index_path(source_language: str, target_language: str = "en", root: str | Path | None = None) -> Path:
    """Path of the installed FreeDict ``.index`` for a language pair; DataError naming the apt package if absent."""
    source, target = get_language(source_language), get_language(target_language)
    directory = Path(root) if root is not None else DICTD_DIR
    for path in sorted(directory.glob("freedict-*-*.index")):
        codes = path.name.removeprefix("freedict-").removesuffix(".index").split("-")
        if len(codes) == 2 and _same_language(codes[0], source) and _same_language(codes[1], target):
            return path
    package = f"dict-freedict-{_freedict_code_candidates(source)[0]}-{_freedict_code_candidates(target)[0]}"
    raise DataError.at(
        directory,
        None,
        f"no FreeDict {source.name}-{target.name} dictionary installed; install it "
        f"with `apt-get install -y {package}` (list them: `apt-cache search freedict`)",
    )


def _same_language(code: str, language: Language) -> bool:
    try:
        return get_language(code) == language
    except UnknownNameError:
        return False


def load_word_pairs(dictionary: str, source_language: str, target_language: str = "en") -> list[WordPair]:
    """Word pairs from ``dictionary``: ``"freedict"`` (the installed FreeDict pair, filtered) or a TSV path (as is).

    Language codes are checked (UnknownNameError) in both cases, so a config typo fails before training.
    """
    get_language(source_language)
    get_language(target_language)
    if dictionary == "freedict":
        return extract_word_pairs(read_dictd(freedict_index_path(source_language, target_language)))
    path = Path(dictionary)
    if path.suffix == ".index":
        return extract_word_pairs(read_dictd(path))
    return read_word_pairs_tsv(path)


def _word_groups(pairs: Sequence[WordPair]) -> list[list[int]]:
    """Pair indexes grouped so that pairs sharing any word (either side) land in one group (union-find)."""
    parent = list(range(len(pairs)))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    owner: dict[str, int] = {}
    for index, pair in enumerate(pairs):
        for word in (pair.source, pair.target):
            if word in owner:
                parent[find(index)] = find(owner[word])
            else:
                owner[word] = index
    groups: dict[int, list[int]] = {}
    for index in range(len(pairs)):
        groups.setdefault(find(index), []).append(index)
    return list(groups.values())


def split_word_pairs(pairs: Sequence[WordPair], n_control: int, n_train: int | None = None, seed: int = 0) -> WordSplit:
    """Seeded train/control split by word: pairs that share a word (source or target) stay on one side.

    Groups of linked pairs are shuffled with ``seed`` and fill the control set up to exactly ``n_control`` pairs
    (a group that would overshoot is passed over); the rest, in shuffled order, is the train set, cut to ``n_train``.
    """
    groups = _word_groups(pairs)
    random.Random(seed).shuffle(groups)
    control: list[int] = []
    train: list[int] = []
    for group in groups:
        if len(control) + len(group) <= n_control:
            control.extend(group)
        else:
            train.extend(group)
    if len(control) < n_control:
        raise DataError(
            f"only {len(control)} of the {n_control} control word pairs could be held out from "
            f"{len(pairs)} pairs; lower n_control or add pairs"
        )
    if n_train is not None:
        train = train[:n_train]
    return WordSplit(tuple(pairs[i] for i in train), tuple(pairs[i] for i in control))


def write_word_pairs_tsv(path: str | Path, pairs: Iterable[WordPair]) -> None:
    """Write pairs as ``source<TAB>target`` (atomic), readable by :func:`read_word_pairs_tsv`."""
    with atomic_write(path) as handle:
        for pair in pairs:
            handle.write(f"{pair.source}\t{pair.target}\n")
