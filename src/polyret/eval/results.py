"""The results schema: one JSON file per (model, task), read by the study runner and the report.

Layout of a result file (``SCHEMA_VERSION`` 1), close in spirit to MTEB's::

    {"schema_version": 1, "task": "tatoeba", "split": "test",
     "main_score": {"metric": "xx2en.accuracy", "value": 84.2},
     "languages": {"sw": {"xx2en.accuracy": 75.1, "en2xx.accuracy": 70.0, "n": 390}, ...},
     "aggregates": {"all": {...}, "low-resource": {...}, "other": {...}},
     "extra": {...task-specific tables, e.g. LAReQA's query x candidate language mAP matrix...},
     "model": {...Encoder.describe()...}, "config": {...task options...},
     "per_query": "tatoeba.per_query.npz" | null,
     "polyret_version": "0.1.0", "created": "2026-11-25T16:00:00+00:00", "duration_s": 12.3}

Metric keys are ``setting.metric`` (``mono.map``, ``mul.rank_distance``, ``xx2en.accuracy``); values are
x100 except counts and rank distances. ``per_query`` names a compressed ``.npz`` beside the JSON holding,
for each ``"{language}/{setting.metric}"`` key, the per-query values in a fixed query order (and
``"{language}/query_ids"``), so paired significance tests need no re-encoding.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from polyret import __version__
from polyret.errors import DataError
from polyret.io import atomic_write, read_json, timestamp, write_json

SCHEMA_VERSION = 1
_COUNTS = ("n", "count", "languages")


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


def read_result(path: str | Path) -> TaskResult:
    payload = read_json(path)
    version = payload.get("schema_version") if isinstance(payload, dict) else None
    if version != SCHEMA_VERSION:
        raise DataError.at(path, None, f"result schema version {version!r}; this polyret reads {SCHEMA_VERSION}")
    return TaskResult.model_validate(payload)


def read_per_query(result_file: str | Path, result: TaskResult) -> dict[str, np.ndarray]:
    """Load the per-query arrays a result points to ({} when it saved none)."""
    if not result.per_query:
        return {}
    with np.load(Path(result_file).parent / result.per_query) as archive:
        return {key: archive[key] for key in archive.files}
