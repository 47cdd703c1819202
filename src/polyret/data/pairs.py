"""Training data for contrastive retrieval: items translated into several languages.

An **item** is one source query-passage pair; its translations share the item ``id`` (PROTOCOLS §1.2). Per
language an item holds a query, its positive passage and optional hard negatives (passages in the same
language). From items we derive *mono* pairs (q_L, p_L) and *cross* pairs (q_L, p_M), L ≠ M.

Readers (all return a :class:`TrainingSet`; bad input raises :class:`~polyret.errors.DataError` naming
``file:line``):

- :func:`read_jsonl` — polyret's own format, one item per line (nested layout)::

      {"id": "q17", "langs": {"en": {"query": "...", "passage": "...", "negatives": ["..."]},
                              "de": {"query": "...", "passage": "..."}}}

  or one (item, language) per line (long layout; lines of one item may be anywhere in the file)::

      {"id": "q17", "lang": "en", "query": "...", "passage": "...", "negatives": ["..."]}

  ``negatives`` is optional. Language codes are normalised to ISO 639-1 (:func:`~polyret.data.languages.get_language`).
- :func:`from_lareqa` — XQuAD-R / MLQA-R (SQuAD-v1.1 format with sentences): the question is the query and the
  passage is *answer sentence + ' ' + paragraph* (``candidate_text="sentence+context"``, PROTOCOLS §3.1) or the
  sentence alone; the item id is the question id shared across languages.
- :func:`read_tsv` — translation sets sharing ids. Either one file per language with lines
  ``id<TAB>query<TAB>passage[<TAB>negative…]``, or mMARCO-style per-language ``queries`` (``qid<TAB>text``) and
  ``passages`` (``pid<TAB>text``) files joined by one shared ``pairs`` file (``qid<TAB>pid[<TAB>negative pid…]``),
  where the item id is the qid.
- :func:`from_hf_dataset` — any Hugging Face ``datasets`` dataset with the long-layout columns
  ``id, lang, query, passage[, negatives]`` (or ``id, langs`` nested as above).
- :func:`items_from_bitext` — aligned sentence pairs (e.g. mined by CRISS) as two-language items whose query and
  passage are the same sentence (for symmetric training, where both sides get the query prefix).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyret.data.languages import get_language
from polyret.data.lareqa import load_lareqa
from polyret.errors import DataError, PolyretError
from polyret.io import atomic_write

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LangEntry:
    """One language's side of an item."""

    query: str
    passage: str
    negatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainItem:
    """A source item: its id and, per language code, a :class:`LangEntry`."""

    id: str
    langs: Mapping[str, LangEntry]


@dataclass(frozen=True)
class Pair:
    """One training triplet's texts (unprefixed): query in ``query_lang``, passage (+ negatives) in ``passage_lang``."""

    item_id: str
    query_lang: str
    passage_lang: str
    query: str
    passage: str
    negatives: tuple[str, ...] = ()

    @property
    def cross(self) -> bool:
        return self.query_lang != self.passage_lang


@dataclass
class TrainingSet:
    """A named training data set: items in their source order. Batches never mix data sets."""

    name: str
    items: list[TrainItem]
    source: str = ""
    _languages: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for item in self.items:
            if item.id in seen:
                raise DataError(f"{self.source or self.name}: item id {item.id!r} appears twice")
            seen.add(item.id)
        self._languages = tuple(sorted({lang for item in self.items for lang in item.langs}))

    def __len__(self) -> int:
        return len(self.items)

    @property
    def languages(self) -> tuple[str, ...]:
        """Every language code present, sorted."""
        return self._languages

    def language_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self._languages, 0)
        for item in self.items:
            for lang in item.langs:
                counts[lang] += 1
        return counts

    def restrict(self, languages: Iterable[str], min_negatives: int = 0) -> TrainingSet:
        """A copy keeping only ``languages`` (and entries with at least ``min_negatives`` negatives); empty items go."""
        keep = set(languages)
        items = []
        for item in self.items:
            langs = {
                lang: entry
                for lang, entry in item.langs.items()
                if lang in keep and len(entry.negatives) >= min_negatives
            }
            if langs:
                items.append(TrainItem(item.id, langs))
        return TrainingSet(self.name, items, self.source)

    def split(self, fraction: float, seed: int) -> tuple[TrainingSet, TrainingSet]:
        """(train, held-out) by item: a seeded ``fraction`` of the items is held out (at least one if fraction > 0)."""
        # numpy loads only when this runs, not when pairs is imported
        import numpy as np

        if not 0.0 <= fraction < 1.0:
            raise ValueError("fraction must lie in [0, 1)")
        count = round(len(self.items) * fraction)
        if fraction > 0 and count == 0:
            count = 1
        order = np.random.default_rng([seed, 7211]).permutation(len(self.items))
        held = set(order[:count].tolist())
        train = [item for i, item in enumerate(self.items) if i not in held]
        other = [item for i, item in enumerate(self.items) if i in held]
        return TrainingSet(self.name, train, self.source), TrainingSet(f"{self.name}:held-out", other, self.source)

    def mono_pairs(self, languages: Iterable[str] | None = None) -> Iterator[Pair]:
        """Every (q_L, p_L) pair, item by item, languages in code order."""
        keep = None if languages is None else set(languages)
        for item in self.items:
            for lang in sorted(item.langs):
                if keep is None or lang in keep:
                    entry = item.langs[lang]
                    yield Pair(item.id, lang, lang, entry.query, entry.passage, entry.negatives)

    def cross_pairs(self, languages: Iterable[str] | None = None) -> Iterator[Pair]:
        """Every ordered (q_L, p_M) pair with L ≠ M, item by item; negatives come from the passage language."""
        keep = None if languages is None else set(languages)
        for item in self.items:
            langs = [lang for lang in sorted(item.langs) if keep is None or lang in keep]
            for lq in langs:
                for lp in langs:
                    if lq != lp:
                        q, p = item.langs[lq], item.langs[lp]
                        yield Pair(item.id, lq, lp, q.query, p.passage, p.negatives)


# --------------------------------------------------------------------------------------------- records → items
def _code(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: language code must be a non-empty string")
    try:
        return get_language(value).code
    except PolyretError as err:
        raise DataError(f"{where}: {err}") from None


def _text(record: Mapping[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field {key!r} must be a non-empty string")
    return value


def _entry(record: Mapping[str, Any], where: str) -> LangEntry:
    if not isinstance(record, Mapping):
        raise DataError(f"{where}: expected an object with query and passage")
    negatives = record.get("negatives") or ()
    if isinstance(negatives, str) or not isinstance(negatives, Sequence):
        raise DataError(f"{where}: 'negatives' must be a list of strings")
    for k, negative in enumerate(negatives):
        if not isinstance(negative, str) or not negative.strip():
            raise DataError(f"{where}: negatives[{k}] must be a non-empty string")
    return LangEntry(_text(record, "query", where), _text(record, "passage", where), tuple(negatives))


def _item_id(record: Mapping[str, Any], where: str) -> str:
    value = record.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise DataError(f"{where}: field 'id' must be a non-empty string or integer")
    return str(value)


class _ItemBuilder:
    """Collects records of either layout, keeps item order of first appearance, rejects (id, lang) repeats."""

    def __init__(self) -> None:
        self.langs: dict[str, dict[str, LangEntry]] = {}

    def add(self, record: Any, where: str) -> None:
        if not isinstance(record, Mapping):
            raise DataError(f"{where}: expected a JSON object")
        item_id = _item_id(record, where)
        if "langs" in record:
            langs = record["langs"]
            if not isinstance(langs, Mapping) or not langs:
                raise DataError(f"{where}: 'langs' must be a non-empty object of language -> entry")
            for raw, entry in langs.items():
                if entry is None:  # Arrow structs fill absent languages with null
                    continue
                self._put(item_id, _code(raw, where), _entry(entry, f"{where}: langs.{raw}"), where)
        elif "lang" in record:
            self._put(item_id, _code(record["lang"], where), _entry(record, where), where)
        else:
            raise DataError(f"{where}: expected either 'langs' (nested layout) or 'lang' (long layout)")

    def _put(self, item_id: str, lang: str, entry: LangEntry, where: str) -> None:
        langs = self.langs.setdefault(item_id, {})
        if lang in langs:
            raise DataError(f"{where}: item {item_id!r} has language {lang!r} twice")
        langs[lang] = entry

    def build(self, name: str, source: str) -> TrainingSet:
        if not self.langs:
            raise DataError(f"{source}: no training items")
        return TrainingSet(name, [TrainItem(i, dict(sorted(langs.items()))) for i, langs in self.langs.items()], source)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line without its newline) for the non-blank lines of a UTF-8 text file; a missing file or bad
    bytes raise :class:`DataError` naming the file (and line)."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except FileNotFoundError:
        raise DataError.at(path, None, "file not found") from None
    with handle:
        lineno = 0
        try:
            for lineno, line in enumerate(handle, start=1):
                if line.strip():
                    yield lineno, line.rstrip("\r\n")
        except UnicodeDecodeError as err:
            raise DataError.at(path, lineno + 1, f"not UTF-8 text ({err.reason})") from None


def read_jsonl(path: str | Path, name: str | None = None) -> TrainingSet:
    """Read polyret's JSONL training format (see the module docstring); blank lines are skipped."""
    source = Path(path)
    builder = _ItemBuilder()
    for lineno, line in _lines(source):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError.at(source, lineno, f"malformed JSON: {err.msg} (column {err.colno})") from None
        builder.add(record, f"{source}:{lineno}")
    return builder.build(name or source.stem, str(source))


def write_jsonl(training_set: TrainingSet, path: str | Path) -> None:
    """Write items in the nested JSONL layout (atomically)."""
    with atomic_write(path) as handle:
        for item in training_set.items:
            langs = {}
            for lang, entry in item.langs.items():
                record: dict[str, Any] = {"query": entry.query, "passage": entry.passage}
                if entry.negatives:
                    record["negatives"] = list(entry.negatives)
                langs[lang] = record
            handle.write(json.dumps({"id": item.id, "langs": langs}, ensure_ascii=False) + "\n")


def from_lareqa(
    name: str,
    languages: Sequence[str] | None = None,
    root: str | Path | None = None,
    *,
    candidate_text: str = "sentence+context",
    articles: int | None = None,
) -> TrainingSet:
    """Convert XQuAD-R / MLQA-R into items: query = question, passage = answer sentence [+ ' ' + paragraph].

    Items are linked across languages by question id (PROTOCOLS §3.1). MLQA-R items span 2-4 languages.
    """
    if candidate_text not in ("sentence", "sentence+context"):
        raise PolyretError(f"candidate_text must be 'sentence' or 'sentence+context', got {candidate_text!r}")
    data = load_lareqa(name, languages, root, articles=articles)  # type: ignore[arg-type]
    langs: dict[str, dict[str, LangEntry]] = {}
    for question in data.questions:
        candidate = data.candidates[question.answer_candidates[0]]
        passage = candidate.text if candidate_text == "sentence" else f"{candidate.text} {candidate.context}"
        langs.setdefault(question.id, {})[get_language(question.lang).code] = LangEntry(question.text, passage)
    items = [TrainItem(item_id, dict(sorted(entries.items()))) for item_id, entries in langs.items()]
    source = ", ".join(str(p) for p in data.files.values())
    return TrainingSet(name, items, source)


def _tsv_rows(path: Path, min_fields: int) -> Iterator[tuple[int, list[str]]]:
    for lineno, line in _lines(path):
        fields = line.split("\t")
        if len(fields) < min_fields or any(not f.strip() for f in fields[:min_fields]):
            raise DataError.at(
                path, lineno, f"expected at least {min_fields} non-empty tab-separated fields, got {len(fields)}"
            )
        yield lineno, fields


def read_tsv(
    files: Mapping[str, str | Path] | None = None,
    *,
    name: str = "tsv",
    queries: Mapping[str, str | Path] | None = None,
    passages: Mapping[str, str | Path] | None = None,
    pairs: str | Path | None = None,
) -> TrainingSet:
    """Read translation sets sharing ids (see the module docstring for the two layouts).

    ``files``: language -> ``id<TAB>query<TAB>passage[<TAB>negative…]`` file. Or ``queries`` and ``passages``
    (language -> file) plus one ``pairs`` file of ``qid<TAB>pid[<TAB>negative pid…]``; a language lacking a
    query or passage translation for a pair is simply absent from that item.
    """
    builder = _ItemBuilder()
    if files:
        if queries or passages or pairs:
            raise PolyretError("give either files, or queries + passages + pairs, not both")
        for raw, file in files.items():
            path = Path(file)
            lang = _code(raw, str(path))
            for lineno, fields in _tsv_rows(path, 3):
                builder._put(
                    fields[0],
                    lang,
                    LangEntry(fields[1], fields[2], tuple(f for f in fields[3:] if f)),
                    f"{path}:{lineno}",
                )
        return builder.build(name, ", ".join(str(f) for f in files.values()))
    if not (queries and passages and pairs):
        raise PolyretError("the mMARCO layout needs queries, passages (language -> file) and a pairs file")
    pairs_path = Path(pairs)
    links = [(fields[0], fields[1], tuple(f for f in fields[2:] if f)) for _, fields in _tsv_rows(pairs_path, 2)]
    for raw in sorted(set(queries) | set(passages)):
        if raw not in queries or raw not in passages:
            raise PolyretError(f"language {raw!r} needs both a queries and a passages file")
        lang = _code(raw, str(queries[raw]))
        qtext = {fields[0]: fields[1] for _, fields in _tsv_rows(Path(queries[raw]), 2)}
        ptext = {fields[0]: fields[1] for _, fields in _tsv_rows(Path(passages[raw]), 2)}
        for lineno, (qid, pid, negs) in enumerate(links, start=1):
            if qid in qtext and pid in ptext:
                negatives = tuple(ptext[n] for n in negs if n in ptext)
                builder._put(qid, lang, LangEntry(qtext[qid], ptext[pid], negatives), f"{pairs_path}:{lineno}")
    return builder.build(name, str(pairs_path))


def from_hf_dataset(dataset: Any, name: str = "hf") -> TrainingSet:
    """Items from a Hugging Face ``datasets.Dataset`` (or any iterable of row dicts) in either layout."""
    builder = _ItemBuilder()
    columns = getattr(dataset, "column_names", None)
    if columns is not None and "id" not in columns:
        raise DataError(
            f"{name}: dataset needs an 'id' column and either 'langs' or 'lang, query, passage'; has {columns}"
        )
    for row, record in enumerate(dataset):
        builder.add(record, f"{name}: row {row}")
    return builder.build(name, name)


def load_hf_dataset(
    path: str, name: str | None = None, split: str = "train", subset: str | None = None, **kwargs: Any
) -> TrainingSet:
    """``datasets.load_dataset(path, subset, split=split)`` (hub id, local folder or a saved dataset) → items."""
    # datasets loads only when this runs, not when pairs is imported
    import datasets

    try:
        local = Path(path)
        if local.is_dir() and (local / "dataset_info.json").exists():
            loaded = datasets.load_from_disk(str(local))
            if isinstance(loaded, datasets.DatasetDict):
                loaded = loaded[split]
        else:
            loaded = datasets.load_dataset(path, subset, split=split, **kwargs)
    except (FileNotFoundError, ValueError, ConnectionError) as err:
        raise DataError(f"{path}: cannot load Hugging Face dataset ({str(err).splitlines()[0]})") from None
    return from_hf_dataset(loaded, name or Path(path).name)


def items_from_bitext(pairs: Iterable[tuple[str, str, str, str]], name: str = "bitext") -> TrainingSet:
    """Items from aligned sentence pairs ``(lang_x, text_x, lang_y, text_y)``: query = passage = the sentence.

    Train these with the X-Y policy and the query prefix on both sides (``model.passage_prefix`` = query prefix):
    every triplet is then x→y or y→x. Item ids are the pair's position.
    """
    items = []
    for k, (lang_x, text_x, lang_y, text_y) in enumerate(pairs):
        lx, ly = get_language(lang_x).code, get_language(lang_y).code
        if lx == ly:
            raise DataError(f"{name}: pair {k} has the same language {lx!r} on both sides")
        items.append(TrainItem(str(k), {lx: LangEntry(text_x, text_x), ly: LangEntry(text_y, text_y)}))
    return TrainingSet(name, items, name)
