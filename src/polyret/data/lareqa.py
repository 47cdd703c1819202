"""LAReQA readers: XQuAD-R and MLQA-R (PROTOCOLS §3.1).

One SQuAD-v1.1-style JSON per language (``lareqa/xquad-r/{lang}.json``, ``lareqa/mlqa-r/{lang}.json`` or
``lareqa/mlqa-dev-r/{lang}.json`` under :func:`polyret.io.data_dir`)::

    data -> paragraphs -> {context, sentences, sentence_breaks [[start, end)], qas [{id, question, answers}]}

What the reader returns (:class:`LareqaData`):

- ``candidates``: every sentence of every paragraph, **not deduplicated**, in the canonical order
  *language code, then file order* (article, paragraph, sentence). A candidate's position in this list
  is its **canonical index**; evaluation breaks score ties by it.
- ``questions``: every answerable question, language by language in the same order. ``answer_candidates``
  holds canonical indexes of the question's **own-language** answer sentence (one per answer; every
  LAReQA question has exactly one answer). Parallel answers in other languages are found through the
  shared question ``id`` (the item id): :meth:`LareqaData.answers_by_item`.
- The answer sentence is the sentence whose break ``[start, end)`` contains ``answer_start``; an answer
  whose span runs on into the next sentence still belongs to the sentence it starts in. A question
  whose ``answer_start`` lies in no sentence is left out of ``questions`` and counted in ``unanswered``
  (none in the released files).
- Candidate text is taken from ``sentences`` (two ``tr`` breaks in XQuAD-R are slightly shifted, so
  ``context[start:end]`` is not used for text).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from polyret.data.languages import get_language
from polyret.errors import DataError, UnknownNameError
from polyret.io import data_dir, read_json

log = logging.getLogger(__name__)

LareqaName = Literal["xquad-r", "mlqa-r"]
LAREQA_NAMES: tuple[str, ...] = ("xquad-r", "mlqa-r")
# Directory names tried, in order, for each data set (the MLQA-R folder was renamed upstream).
_DIRECTORIES: dict[str, tuple[str, ...]] = {"xquad-r": ("xquad-r",), "mlqa-r": ("mlqa-r", "mlqa-dev-r")}


@dataclass(frozen=True)
class Candidate:
    """One answer-candidate sentence, identified by (lang, article, paragraph, sentence) file positions."""

    lang: str
    article: int  # index of the article in the language file
    paragraph: int  # index of the paragraph within its article
    sentence: int  # index of the sentence within its paragraph
    text: str  # the sentence (from ``sentences``)
    context: str  # the whole paragraph


@dataclass(frozen=True)
class Question:
    """One question; ``id`` is shared by its translations (the item id)."""

    id: str
    lang: str
    text: str
    answer_candidates: tuple[int, ...]  # canonical indexes (into LareqaData.candidates) of own-language answers


@dataclass
class LareqaData:
    """A loaded LAReQA data set; see the module docstring for the ordering rules."""

    name: str
    candidates: list[Candidate]
    questions: list[Question]
    unanswered: int = 0
    languages: tuple[str, ...] = ()
    files: dict[str, Path] = field(default_factory=dict)

    def candidate_slices(self) -> dict[str, slice]:
        """The contiguous canonical-index range of each language's candidates."""
        slices: dict[str, slice] = {}
        start = 0
        for index, candidate in enumerate(self.candidates):
            if index + 1 == len(self.candidates) or self.candidates[index + 1].lang != candidate.lang:
                slices[candidate.lang] = slice(start, index + 1)
                start = index + 1
        return slices

    def answers_by_item(self) -> dict[str, dict[str, tuple[int, ...]]]:
        """``{item id: {lang: canonical indexes of that language's answer sentences}}``."""
        items: dict[str, dict[str, tuple[int, ...]]] = {}
        for question in self.questions:
            items.setdefault(question.id, {})[question.lang] = question.answer_candidates
        return items

    def questions_in(self, lang: str) -> list[Question]:
        return [q for q in self.questions if q.lang == lang]

    def counts(self) -> dict[str, dict[str, int]]:
        """Questions and candidates per language (for checks against the published tables)."""
        out = {lang: {"questions": 0, "candidates": 0} for lang in self.languages}
        for candidate in self.candidates:
            out.setdefault(candidate.lang, {"questions": 0, "candidates": 0})["candidates"] += 1
        for question in self.questions:
            out.setdefault(question.lang, {"questions": 0, "candidates": 0})["questions"] += 1
        return out


def lareqa_dir(name: str, root: Path | str | None = None) -> Path:
    """The folder holding ``{lang}.json`` for ``name``.

    ``root`` may be the data root (holding ``lareqa/``), the ``lareqa`` folder itself or the data set folder.
    """
    if name not in _DIRECTORIES:
        raise UnknownNameError("LAReQA data set", name, LAREQA_NAMES)
    base = Path(root).expanduser() if root is not None else data_dir()
    tried: list[Path] = []
    for folder in _DIRECTORIES[name]:
        for candidate in (base / "lareqa" / folder, base / folder):
            tried.append(candidate)
            if candidate.is_dir():
                return candidate
    if base.name in _DIRECTORIES[name] and base.is_dir():
        return base
    raise DataError(
        f"{name} data not found (looked in {', '.join(str(t) for t in tried)}); set POLYRET_DATA_DIR to a copy "
        f"of the benchmark data (holding lareqa/{_DIRECTORIES[name][0]}/{{lang}}.json) or run "
        f"`polyret data prepare {name}` when online"
    )


def available_languages(name: str, root: Path | str | None = None) -> tuple[str, ...]:
    """Language codes with a ``{lang}.json`` file, sorted (the canonical language order)."""
    folder = lareqa_dir(name, root)
    return tuple(sorted(p.stem for p in folder.glob("*.json")))


def load_lareqa(
    name: LareqaName,
    languages: Sequence[str] | None = None,
    root: Path | str | None = None,
    *,
    articles: int | None = None,
) -> LareqaData:
    """Load XQuAD-R or MLQA-R.

    ``languages`` defaults to every file present; it is sorted into the canonical (code) order.
    ``articles`` keeps only the first N articles of each language file (quick runs). Malformed files raise
    :class:`DataError` naming the file (and line for JSON syntax errors).
    """
    folder = lareqa_dir(name, root)
    present = available_languages(name, folder)
    if languages is None:
        chosen = present
    else:
        chosen = tuple(sorted(dict.fromkeys(_normalise_code(code, present) for code in languages)))
        for lang in chosen:
            if lang not in present:
                raise UnknownNameError(f"{name} language", lang, present)
    if not chosen:
        raise DataError(f"{folder}: no {{lang}}.json files")
    if articles is not None and articles <= 0:
        raise ValueError("articles must be positive")
    data = LareqaData(name=name, candidates=[], questions=[], languages=chosen)
    for lang in chosen:
        path = folder / f"{lang}.json"
        data.files[lang] = path
        _read_language(path, lang, data, articles)
    if data.unanswered:
        log.warning("%s: %d questions have an answer_start outside every sentence; left out", name, data.unanswered)
    return data


def _normalise_code(code: str, present: Sequence[str]) -> str:
    """Map any code form (``ara``, ``zh-Hans``, ``ar_AR``) to the file's ISO 639-1 code where possible."""
    if code in present:
        return code

    try:
        return get_language(code).code
    except UnknownNameError:
        return code


def _field(obj: Any, key: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise DataError.at(path, None, f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError.at(
            path, None, f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}"
        )
    return value


def _read_language(path: Path, lang: str, data: LareqaData, articles: int | None) -> None:
    payload = read_json(path)
    entries = _field(payload, "data", list, path, "top level")
    if articles is not None:
        entries = entries[:articles]
    seen_ids: set[str] = set()
    for a, article in enumerate(entries):
        paragraphs = _field(article, "paragraphs", list, path, f"data[{a}]")
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(paragraph, "context", str, path, where)
            sentences = _field(paragraph, "sentences", list, path, where)
            breaks = _field(paragraph, "sentence_breaks", list, path, where)
            if len(sentences) != len(breaks):
                raise DataError.at(path, None, f"{where}: {len(sentences)} sentences but {len(breaks)} sentence_breaks")
            spans: list[tuple[int, int]] = []
            for s, (text, span) in enumerate(zip(sentences, breaks, strict=True)):
                if not isinstance(text, str):
                    raise DataError.at(path, None, f"{where}.sentences[{s}]: expected a string")
                if (
                    not isinstance(span, list)
                    or len(span) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in span)
                ):
                    raise DataError.at(path, None, f"{where}.sentence_breaks[{s}]: expected [start, end]")
                spans.append((span[0], span[1]))
            first = len(data.candidates)
            for s, text in enumerate(sentences):
                data.candidates.append(Candidate(lang, a, p, s, text, context))
            for k, qa in enumerate(_field(paragraph, "qas", list, path, where)):
                qwhere = f"{where}.qas[{k}]"
                qid = str(_field(qa, "id", (str, int), path, qwhere))
                question = _field(qa, "question", str, path, qwhere)
                answers = _field(qa, "answers", list, path, qwhere)
                if qid in seen_ids:
                    raise DataError.at(path, None, f"{qwhere}: question id {qid!r} appears twice")
                seen_ids.add(qid)
                found: list[int] = []
                for j, answer in enumerate(answers):
                    start = _field(answer, "answer_start", int, path, f"{qwhere}.answers[{j}]")
                    hit = next((i for i, (lo, hi) in enumerate(spans) if lo <= start < hi), None)
                    if hit is not None and first + hit not in found:
                        found.append(first + hit)
                if not found:
                    data.unanswered += 1
                    continue
                data.questions.append(Question(qid, lang, question, tuple(found)))
