"""The results schema: one JSON file per (model, task), read by the study runner and the report.

Layout of a result file (``SCHEMA_VERSION`` 2), close in spirit to MTEB's (:mod:`polyret.eval.mteb` writes MTEB's
own)::

    {"schema_version": 2, "task": "tatoeba", "split": "test",
     "main_score": {"metric": "xx2en.accuracy", "value": 84.2},
     "languages": {"sw-Latn": {"xx2en.accuracy": 75.1, "en2xx.accuracy": 70.0, "n": 390}, ...},
     "aggregates": {"all": {...}, "low-resource": {...}, "other": {...}},
     "extra": {...task-specific tables, e.g. LAReQA's query x candidate language mAP matrix...},
     "model": {...Encoder.describe()...}, "config": {...task options...},
     "per_query": "tatoeba.per_query.npz" | null,
     "polyret_version": "0.1.0", "created": "2026-11-25T16:00:00+00:00", "duration_s": 12.3}

Language keys are BCP-47 tags with their script in every task (:func:`polyret.data.languages.language_key`; UDHR
versions: :func:`~polyret.data.languages.udhr_key`).
Metric keys are ``setting.metric`` (``mono.map``, ``mul.rank_distance``, ``xx2en.accuracy``); values are
x100 except counts and rank distances. ``per_query`` names a compressed ``.npz`` beside the JSON holding,
for each ``"{language}/{setting.metric}"`` key, the per-query values in a fixed query order (and
``"{language}/query_ids"``), so paired significance tests need no re-encoding.

``"{language}/item_ids"`` (aligned with ``query_ids``) names each query's *item*, the unit the significance tests
resample (PROTOCOLS §7.1): queries with the same item id, in any language and any per-query array of the file, are
one item. Each task declares its rule once (``ITEMS``, an :class:`ItemRule`) and writes the ids through it: LAReQA
uses the question id as is (its translations are one item), the per-language tasks qualify the id with the language
(``"sw-Latn/17"``: Tatoeba line 17 of sw, one item for both directions). A file without ``item_ids`` (written before
they existed) counts each (language, query id) as its own item, i.e. the per-query test; adding the key did not
change ``SCHEMA_VERSION``, since readers that ignore it still read every other key as before.
"""

from __future__ import annotations

import contextlib
import gzip
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from pydantic import BaseModel, Field

from polyret import __version__
from polyret.errors import DataError
from polyret.io import atomic_write, read_json, timestamp, write_json

# 2: language keys became BCP-47 with script (1 used each benchmark's own codes: ``sw``, ``swh``, ``053``).
SCHEMA_VERSION = 2
_COUNTS = ("n", "count", "languages")


@dataclass(frozen=True)
class ItemRule:
    """How a task's per-query values group into items: ``unit`` says what one item is, in words (for reports)."""

    unit: str
    #: True: the same id in two languages is one item (LAReQA: a question and its translations); False: items are
    #: per language (the id is qualified with the language).
    shared_across_languages: bool

    def item_ids(self, language: str, ids: Sequence[object] | np.ndarray) -> np.ndarray:
        """The ``"{language}/item_ids"`` array for per-query ``ids`` of ``language``."""
        text = np.asarray([str(i) for i in np.asarray(ids).tolist()], dtype=str)
        return text if self.shared_across_languages else np.char.add(f"{language}/", text)


class MainScore(BaseModel):
    metric: str
    value: float


class TaskResult(BaseModel):
    """One model's scores on one task; see the module docstring for the meaning of each field."""

    schema_version: int = SCHEMA_VERSION
    task: str
    split: str = "test"
    main_score: MainScore
    languages: dict[str, dict[str, float]] = Field(default_factory=dict)
    aggregates: dict[str, dict[str, float]] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    per_query: str | None = None
    polyret_version: str = __version__
    created: str = Field(default_factory=timestamp)
    duration_s: float = 0.0


def is_count(metric: str) -> bool:
    """Counts recorded beside scores (``n``, ``n_languages``, ``cross.n_settings``, ``languages``), not scores."""
    last = metric.split(".")[-1]
    return last in _COUNTS or last.startswith("n_")


def readable_options(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    """A result's recorded options as ``key: value`` lines, nested keys dotted (``eval_options.batch_size: 32``)
    and lists comma-separated, whole: what a report or a model card shows under its tables."""
    lines: list[str] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            lines += readable_options(value, f"{name}.")
        elif isinstance(value, list | tuple):
            lines.append(f"{name}: {', '.join(str(item) for item in value) or '(none)'}")
        else:
            lines.append(f"{name}: {value}")
    return lines


def result_path(output_dir: str | Path, task: str) -> Path:
    return Path(output_dir) / f"{task}.json"


def write_result(
    output_dir: str | Path, result: TaskResult, per_query: dict[str, np.ndarray] | None = None
) -> TaskResult:
    """Write ``per_query`` arrays (if any) and then the JSON, each atomically; return the result as written (its
    ``per_query`` names the arrays' file). A task given an ``output_dir`` returns this, so callers know the file."""
    target = result_path(output_dir, result.task)
    if per_query:
        name = f"{result.task}.per_query.npz"
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **per_query)
        with atomic_write(target.parent / name, "wb") as handle:
            handle.write(buffer.getvalue())
        result = result.model_copy(update={"per_query": name})
    write_json(target, result.model_dump(mode="json"))
    return result


#: how many passages per query a task's TREC run file keeps
RUN_DEPTH = 100


@contextlib.contextmanager
def _text_file(path: Path) -> Iterator[IO[str]]:
    """An atomically written text file, gzip-compressed when ``path`` ends in ``.gz``."""
    if path.suffix != ".gz":
        with atomic_write(path) as handle:
            yield handle
        return
    with (
        atomic_write(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed,
        io.TextIOWrapper(packed, encoding="utf-8") as handle,
    ):
        yield handle


def write_trec_run(path: str | Path, run: Mapping[str, Sequence[tuple[str, float]]], tag: str) -> Path:
    """Write ``{qid: [(docid, score), ...] best first}`` as a TREC run (``qid Q0 docid rank score tag``), atomically;
    gzip-compressed for a ``.gz`` path (ir_measures reads both).

    ir_measures reads these (``ir_measures.read_trec_run``) but has no writer. Scores keep float32 precision
    (9 significant digits), so re-scoring orders them as polyret did wherever scores differ.
    """
    for name, value in (("tag", tag), *(("query id", qid) for qid in run)):
        if not value or len(value.split()) != 1:
            raise DataError(f"{path}: {name} {value!r} is empty or contains white space, which a TREC run cannot hold")
    with _text_file(Path(path)) as handle:
        for qid, ranked in run.items():
            handle.writelines(
                f"{qid} Q0 {docid} {rank} {score:.9g} {tag}\n" for rank, (docid, score) in enumerate(ranked, start=1)
            )
    return Path(path)


def write_trec_qrels(path: str | Path, qrels: Mapping[str, Mapping[str, int]]) -> Path:
    """Write ``{qid: {docid: relevance}}`` as TREC qrels (``qid 0 docid relevance``), atomically (gzip for ``.gz``)."""
    with _text_file(Path(path)) as handle:
        for qid, docs in qrels.items():
            handle.writelines(f"{qid} 0 {docid} {relevance}\n" for docid, relevance in docs.items())
    return Path(path)


def read_result(path: str | Path) -> TaskResult:
    payload = read_json(path)
    version = payload.get("schema_version") if isinstance(payload, dict) else None
    if version != SCHEMA_VERSION:
        raise DataError.at(
            path, None, f"result schema version {version!r}; this polyret reads {SCHEMA_VERSION}: re-run the evaluation"
        )
    return TaskResult.model_validate(payload)


def per_query_items(arrays: dict[str, np.ndarray], language: str, n_queries: int) -> np.ndarray:
    """The item id of each of ``language``'s ``n_queries`` queries in ``arrays`` (one npz's contents).

    Files without ``"{language}/item_ids"`` fall back to one item per query: ``"{language}/{query id}"`` (the
    position when there are no query ids either).
    """
    items = arrays.get(f"{language}/item_ids")
    if items is not None:
        return np.asarray(items).astype(str)
    queries = arrays.get(f"{language}/query_ids")
    return ItemRule("query", shared_across_languages=False).item_ids(
        language, np.arange(n_queries) if queries is None else queries
    )


def read_per_query(result_file: str | Path, result: TaskResult) -> dict[str, np.ndarray]:
    """Load the per-query arrays a result points to ({} when it saved none)."""
    if not result.per_query:
        return {}
    with np.load(Path(result_file).parent / result.per_query) as archive:
        return {key: archive[key] for key in archive.files}
