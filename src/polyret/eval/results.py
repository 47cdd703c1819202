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
versions: :func:`~polyret.data.languages.udhr_key`). Metric keys are ``setting.metric`` (``mono.map``,
``mul.rank_distance``, ``xx2en.accuracy``); values are x100 except counts and rank distances. ``per_query`` names a
compressed ``.npz`` beside the JSON holding, for each ``"{language}/{setting.metric}"`` key, the per-query values in a
fixed query order (and ``"{language}/query_ids"``), so paired significance tests need no re-encoding.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from polyret import __version__
from polyret.errors import DataError
from polyret.io import atomic_write, read_json, write_json

# 2: language keys became BCP-47 with script (1 used each benchmark's own codes: ``sw``, ``swh``, ``053``).
SCHEMA_VERSION = 2


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
    created: str = Field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    duration_s: float = 0.0


def result_path(output_dir: str | Path, task: str) -> Path:
    return Path(output_dir) / f"{task}.json"


def write_result(output_dir: str | Path, result: TaskResult, per_query: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``per_query`` arrays (if any) and then the JSON, each atomically; return the JSON path."""
    target = result_path(output_dir, result.task)
    if per_query:
        name = f"{result.task}.per_query.npz"
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **per_query)
        with atomic_write(target.parent / name, "wb") as handle:
            handle.write(buffer.getvalue())
        result = result.model_copy(update={"per_query": name})
    write_json(target, result.model_dump(mode="json"))
    return target


def read_result(path: str | Path) -> TaskResult:
    payload = read_json(path)
    version = payload.get("schema_version") if isinstance(payload, dict) else None
    if version != SCHEMA_VERSION:
        raise DataError.at(
            path, None, f"result schema version {version!r}; this polyret reads {SCHEMA_VERSION}: re-run the evaluation"
        )
    return TaskResult.model_validate(payload)


def read_per_query(result_file: str | Path, result: TaskResult) -> dict[str, np.ndarray]:
    """Load the per-query arrays a result points to ({} when it saved none)."""
    if not result.per_query:
        return {}
    with np.load(Path(result_file).parent / result.per_query) as archive:
        return {key: archive[key] for key in archive.files}
