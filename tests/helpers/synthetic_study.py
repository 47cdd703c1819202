"""Synthetic studies for the runner and report tests: fake trainers/evaluators that write realistic results.

The fake evaluator writes TaskResult files shaped like the real tasks' (LAReQA, Tatoeba, UDHR: same metric
keys, per-language rows, aggregates, per-query npz with query and item ids) from a seeded RNG, with a per-method
effect so that significance tests have something to find. Calls are counted in a JSON-lines file so tests
can check which runs were trained or evaluated again after a kill.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from polyret.data.languages import low_resource_group
from polyret.eval.results import MainScore, TaskResult, write_result

XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
TATOEBA_LANGS = ("sw", "kk", "jv", "de", "fr", "el")
UDHR_VERSIONS = ("swh", "jav", "yor", "hau", "deu", "fra")
EFFECT = {
    "zero-shot": 0.0,
    "mono": 0.08,
    "xy": 0.10,
    "hybrid": 0.14,
    "criss-contrastive": 0.04,
    "criss": 0.02,
    "tli": 0.01,
}

STUDY_YAML = """\
name: synthetic
description: A synthetic study for tests.
backbones:
  tiny: {model}
methods:
  - zero-shot
  - mono
  - xy
  - {{method: hybrid, alpha: [0.25, 0.5]}}
seeds: [0, 1]
train:
  data: {{dataset: mlqa-r}}
  max_steps: 3
  batch_size: 4
  languages: [ar, de, en, es, hi, vi, zh]
eval:
  tasks:
    xquad-r: {{articles: 2, candidate_text: sentence, max_length: 64}}
    tatoeba: {{languages: [sw, kk, jv, de, fr, el], max_sentences: 40}}
    udhr: {{}}
reference: zero-shot
demo_data: true
"""


def write_study_config(path: Path, model: str = "tiny-model", text: str = STUDY_YAML) -> Path:
    path.write_text(text.format(model=model), encoding="utf-8")
    return path


def _effect(label: str) -> float:
    return EFFECT.get("hybrid" if label.startswith("hybrid") else label, 0.0)


def _rng(*parts: Any) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("|".join(map(str, parts)).encode()))


def _aggregates(languages: dict[str, dict[str, float]], metrics: tuple[str, ...]) -> dict[str, dict[str, float]]:
    groups = {"all": list(languages), **low_resource_group(languages)}
    return {
        name: {
            "languages": float(len(codes)),
            **({m: float(np.mean([languages[c][m] for c in codes])) for m in metrics} if codes else {}),
        }
        for name, codes in groups.items()
    }


def synthetic_result(
    task: str, label: str, seed: int, options: dict[str, Any] | None = None, model: dict[str, Any] | None = None
) -> tuple[TaskResult, dict[str, np.ndarray]]:
    """A result for ``task`` as method ``label`` with ``seed`` would produce (deterministic)."""
    effect = _effect(label)
    per_query: dict[str, np.ndarray] = {}
    languages: dict[str, dict[str, float]] = {}
    if task in ("xquad-r", "mlqa-r"):
        metrics = ("mono.map", "cross.map", "mul.map", "mul.r@10", "mul.rank_distance")
        ids = np.asarray([f"q{i:03d}" for i in range(50)])
        for lang in XQUAD_LANGS:
            rng = _rng(task, lang, label, seed)
            row: dict[str, float] = {"n": 50.0}
            for metric in metrics:
                if metric == "mul.rank_distance":
                    values = np.clip(rng.normal(400 * (1 - effect * 2), 60, 50), 10, None)
                else:
                    base = {"mono.map": 0.55, "cross.map": 0.35, "mul.map": 0.3, "mul.r@10": 0.28}[metric]
                    values = np.clip(rng.normal(base + effect, 0.15, 50), 0, 1)
                per_query[f"{lang}/{metric}"] = values
                row[metric] = float(values.mean() * (1 if metric == "mul.rank_distance" else 100))
            per_query[f"{lang}/query_ids"] = ids
            per_query[f"{lang}/item_ids"] = ids  # a question and its translations are one item
            languages[lang] = row
        main = "mul.map"
    elif task == "tatoeba":
        metrics = ("xx2en.accuracy", "en2xx.accuracy", "mean.accuracy")
        for lang in TATOEBA_LANGS:
            rng = _rng(task, lang, label, seed)
            base = 0.55 if lang in ("sw", "kk", "jv") else 0.8
            hits = {
                key: (rng.random(40) < min(0.99, base + effect)).astype(np.uint8)
                for key in ("xx2en.accuracy", "en2xx.accuracy")
            }
            row = {key: float(100 * v.mean()) for key, v in hits.items()}
            row["mean.accuracy"] = (row["xx2en.accuracy"] + row["en2xx.accuracy"]) / 2
            row["n"] = 40.0
            languages[lang] = row
            per_query.update({f"{lang}/{k}": v for k, v in hits.items()})
            per_query[f"{lang}/query_ids"] = np.arange(40)
            per_query[f"{lang}/item_ids"] = np.asarray([f"{lang}/{i}" for i in range(40)])
        main = "xx2en.accuracy"
    elif task == "udhr":
        metrics = ("xx2en.p@1", "en2xx.p@1")
        for code in UDHR_VERSIONS:
            rng = _rng(task, code, label, seed)
            base = 0.4 if code in ("yor", "hau") else 0.8
            hits = {key: (rng.random(30) < min(0.99, base + effect)).astype(np.uint8) for key in metrics}
            languages[code] = {**{k: float(100 * v.mean()) for k, v in hits.items()}, "n": 30.0}
            per_query.update({f"{code}/{k}": v for k, v in hits.items()})
            per_query[f"{code}/query_ids"] = np.arange(1, 31)
            per_query[f"{code}/item_ids"] = np.asarray([f"{code}/{i}" for i in range(1, 31)])
        main = "xx2en.p@1"
    else:
        raise ValueError(f"no synthetic task {task}")
    aggregates = _aggregates(languages, metrics)
    result = TaskResult(
        task=task,
        main_score=MainScore(metric=main, value=aggregates["all"][main]),
        languages=languages,
        aggregates=aggregates,
        model=model or {"name": label},
        config={**(options or {}), "languages": list(languages)},
    )
    return result, per_query


class CallLog:
    """Counts calls in a JSON-lines file (so it survives a killed process)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, kind: str, name: str, **extra: Any) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"kind": kind, "name": name, **extra}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def entries(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [row for row in rows if kind is None or row["kind"] == kind]

    def names(self, kind: str) -> list[str]:
        return [row["name"] for row in self.entries(kind)]


class FakeTrainer:
    """Writes ``run_dir/model/`` (a marker file), logging every call; optional delay and failures."""

    def __init__(self, calls: CallLog, delay: float = 0.0, fail: set[str] | None = None) -> None:
        self.calls, self.delay, self.fail = calls, delay, fail or set()

    def __call__(self, run: Any, run_dir: Path, resume: bool) -> Path:
        self.calls.add("train", run.name, resume=resume)
        print(f"training {run.name} (resume={resume})")  # lands in the run's log file
        if run.name in self.fail:
            raise RuntimeError(f"synthetic training failure in {run.name}")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoint-1").mkdir(exist_ok=True)
        time.sleep(self.delay)
        model = run_dir / "model"
        model.mkdir(exist_ok=True)
        (model / "config.json").write_text(json.dumps({"run": run.name, "settings": run.train}), encoding="utf-8")
        kept = {"kept_step": (run.train or {}).get("max_steps")}  # as the real trainers record it
        (model / "polyret_training.json").write_text(json.dumps(kept), encoding="utf-8")
        return model


class FakeEvaluator:
    """Writes a synthetic result per task (the label and seed come from the run directory's name)."""

    def __init__(self, calls: CallLog, delay: float = 0.0, model_info: dict[str, Any] | None = None) -> None:
        self.calls, self.delay, self.model_info = calls, delay, model_info

    def __call__(self, model: str, tasks: list[str], output_dir: Path, options: dict[str, Any]) -> list[TaskResult]:
        run_name = Path(output_dir).parent.name
        parts = run_name.split("__")
        label, seed = parts[1], int(parts[2][1:]) if len(parts) > 2 else 0
        results = []
        for task in tasks:
            self.calls.add("eval", run_name, task=task, model=str(model))
            time.sleep(self.delay)
            result, per_query = synthetic_result(task, label, seed, options, self.model_info)
            write_result(output_dir, result, per_query)
            results.append(result)
        return results
