"""Readers for MIRACL (PROTOCOLS §3.4): topics, qrels and the passage corpus, in the layouts it ships in.

* Anserini / TREC files under ``<data_dir>/miracl/``: ``topics.miracl-v1.0-{lang}-dev.tsv`` (``qid<TAB>query``)
  and ``qrels.miracl-v1.0-{lang}-dev.tsv`` (``qid Q0 docid rel``).
* BEIR layout, per language folder: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
  ``text``) and ``qrels/dev.tsv`` (``query-id<TAB>corpus-id<TAB>score`` with a header line).
* The Hugging Face ``miracl/miracl-corpus`` files: ``miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz`` (``docid``,
  ``title``, ``text``).

The corpus is read as a stream (:func:`iter_corpus`), so a 33M-passage language never sits in memory as text.
The corpus is not part of the shared data; without it :func:`corpus_files` raises a one-line error saying where
to put it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from polyret.data.languages import MIRACL_LANGS, benchmark_code
from polyret.errors import DataError
from polyret.io import data_dir, iter_lines

CORPUS_HINT = (
    'put the MIRACL {lang} passages there as JSONL ({{"docid", "title", "text"}} per line: the '
    "miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz files of huggingface.co/datasets/miracl/miracl-corpus, or a "
    "BEIR corpus.jsonl), or pass corpus_dir"
)


@dataclass(frozen=True)
class Passage:
    docid: str
    title: str
    text: str

    def joined(self) -> str:
        """Title + space + text (PROTOCOLS §3.4 default); the text alone when there is no title."""
        return f"{self.title} {self.text}" if self.title else self.text


def miracl_dir(root: str | Path | None = None) -> Path:
    return Path(root) if root is not None else data_dir() / "miracl"


def miracl_code(lang: str) -> str:
    """``lang`` as the code in MIRACL's file names (:func:`polyret.data.languages.benchmark_code`)."""
    return benchmark_code(lang, "MIRACL", MIRACL_LANGS)


def corpus_root(corpus_dir: str | Path | None = None, root: str | Path | None = None) -> Path:
    """Where corpora are looked for: ``corpus_dir``, else ``<miracl dir>/corpus``."""
    return Path(corpus_dir) if corpus_dir is not None else miracl_dir(root) / "corpus"


def read_topics(path: str | Path) -> dict[str, str]:
    """``qid<TAB>query`` lines → ``{qid: query}`` (file order)."""
    source = Path(path)
    topics: dict[str, str] = {}
    for number, line in iter_lines(source, blank_lines="skip"):
        parts = line.split("\t", 1)
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise DataError.at(source, number, f"expected qid<TAB>query, got {line[:60]!r}")
        topics[parts[0].strip()] = parts[1].strip()
    return topics


def read_trec_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """TREC ``qid Q0 docid rel`` lines → ``{qid: {docid: rel}}``."""
    source = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for number, line in iter_lines(source, blank_lines="skip"):
        parts = line.split()
        if len(parts) != 4 or not _is_int(parts[3]):
            raise DataError.at(source, number, f"expected 'qid Q0 docid rel', got {line[:60]!r}")
        qrels.setdefault(parts[0], {})[parts[2]] = int(parts[3])
    return qrels


def read_beir_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """BEIR ``query-id<TAB>corpus-id<TAB>score`` (header line optional) → ``{qid: {docid: rel}}``."""
    source = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for number, line in iter_lines(source, blank_lines="skip"):
        parts = line.split("\t")
        if number == 1 and parts[:1] == ["query-id"]:
            continue
        if len(parts) != 3 or not _is_int(parts[2]):
            raise DataError.at(source, number, f"expected query-id<TAB>corpus-id<TAB>score, got {line[:60]!r}")
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _json_records(path: Path) -> Iterator[tuple[int, dict]]:
    for number, line in iter_lines(path, blank_lines="skip"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError.at(path, number, f"malformed JSON: {err.msg} (column {err.colno})") from err
        if not isinstance(record, dict):
            raise DataError.at(path, number, "expected a JSON object")
        yield number, record


def read_beir_queries(path: str | Path) -> dict[str, str]:
    """BEIR ``queries.jsonl`` (``_id``, ``text``) → ``{qid: text}``."""
    source = Path(path)
    queries: dict[str, str] = {}
    for number, record in _json_records(source):
        qid, text = record.get("_id", record.get("query_id")), record.get("text", record.get("query"))
        if qid is None or not isinstance(text, str):
            raise DataError.at(source, number, 'a query needs "_id" and "text"')
        queries[str(qid)] = text
    return queries


def iter_corpus(paths: list[Path]) -> Iterator[Passage]:
    """Stream passages from ``.jsonl`` / ``.jsonl.gz`` files with ``docid`` (or ``_id``), ``title`` and ``text``."""
    for path in paths:
        for number, record in _json_records(path):
            docid = record.get("docid", record.get("_id"))
            text = record.get("text")
            if docid is None or not isinstance(text, str):
                raise DataError.at(path, number, 'a passage needs "docid" (or "_id") and "text"')
            yield Passage(str(docid), str(record.get("title") or ""), text)


def corpus_files(lang: str, corpus_dir: str | Path | None = None, root: str | Path | None = None) -> list[Path]:
    """The corpus files of ``lang`` in canonical (sorted name) order; a one-line DataError when there are none."""
    lang = miracl_code(lang)
    base = corpus_root(corpus_dir, root)
    for folder in (base / lang, base / f"miracl-corpus-v1.0-{lang}"):
        if folder.is_dir():
            beir = folder / "corpus.jsonl"
            if beir.is_file():
                return [beir]
            files = sorted([*folder.glob("*.jsonl"), *folder.glob("*.jsonl.gz")], key=lambda p: p.name)
            if files:
                return files
    raise DataError(f"MIRACL corpus for {lang!r} not found under {base / lang}; " + CORPUS_HINT.format(lang=lang))


@dataclass(frozen=True)
class MiraclTopics:
    lang: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    source: Path


def read_miracl_topics(
    lang: str, root: str | Path | None = None, corpus_dir: str | Path | None = None, split: str = "dev"
) -> MiraclTopics:
    """Queries and qrels of ``lang``: Anserini/TREC files under the MIRACL dir, else the BEIR files beside the
    corpus (``<corpus dir>/<lang>/queries.jsonl`` and ``qrels/<split>.tsv``)."""
    lang = miracl_code(lang)
    folder = miracl_dir(root)
    topics = folder / f"topics.miracl-v1.0-{lang}-{split}.tsv"
    qrels = folder / f"qrels.miracl-v1.0-{lang}-{split}.tsv"
    if topics.is_file() and qrels.is_file():
        return MiraclTopics(lang, read_topics(topics), read_trec_qrels(qrels), topics)
    beir = corpus_root(corpus_dir, root) / lang
    if (beir / "queries.jsonl").is_file() and (beir / "qrels" / f"{split}.tsv").is_file():
        return MiraclTopics(
            lang,
            read_beir_queries(beir / "queries.jsonl"),
            read_beir_qrels(beir / "qrels" / f"{split}.tsv"),
            beir / "queries.jsonl",
        )
    raise DataError(
        f"MIRACL {split} topics for {lang!r} not found: expected {topics.name} and {qrels.name} in "
        f"{folder} (`polyret data prepare miracl`), or queries.jsonl and qrels/{split}.tsv in {beir}"
    )
