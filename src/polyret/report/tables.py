"""Reading a study's results and turning them into tables: mean ± std over seeds, per language, paired.

The report reads only what is on disk: ``study.json`` (written by :mod:`polyret.study.runner`) and each
run's ``results/<task>.json`` (+ ``.per_query.npz``, :mod:`polyret.eval.results`). A *group* is one method
on one backbone, ``(backbone, label)``; its runs differ only in seed. What a task or a method name means (headline
metrics, which metrics are better when lower, where a method sits on the α axis) comes from the registries
(:mod:`polyret.eval.tasks`, :mod:`polyret.train.methods`); a task or method they do not know gets neutral defaults.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from polyret.data.languages import get_language, key_name
from polyret.errors import DataError, PolyretError, UnknownNameError
from polyret.eval.results import TaskResult, is_count, per_query_items, read_per_query, read_result, result_path
from polyret.eval.tasks import find_task
from polyret.io import read_json
from polyret.report.significance import Arm, PairedSample
from polyret.train.methods import Method, find_method

OVERALL_AGGREGATES = ("all", "macro", "mean")
GroupKey = tuple[str, str]  # (backbone, method label)


def lower_is_better(task: str, metric: str) -> bool:
    """Whether ``metric`` of ``task`` is better when lower (the task's metadata says; rank distance for LAReQA)."""
    meta = find_task(task)
    return meta is not None and not meta.higher_is_better(metric)


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (ddof 1; None for one value) and count of per-seed values."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat | None:
        finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        if not finite:
            return None
        std = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
        return cls(float(np.mean(finite)), std, len(finite))

    def format(self, digits: int = 1) -> str:
        text = f"{self.mean:.{digits}f}"
        return text + (f" ± {self.std:.{digits}f}" if self.std is not None else "")


@dataclass
class RunRecord:
    """One run of the study and the results it has on disk."""

    name: str
    backbone: str
    label: str
    method: str
    seed: int
    alpha: float | None
    model: str
    run_dir: Path
    done: bool
    #: the training step whose weights were evaluated (None: zero-shot, or not recorded)
    kept_step: int | None = None
    #: tasks whose text the run trained on (PROTOCOLS §6.3): flagged in tables, never given a verdict
    transductive_tasks: tuple[str, ...] = ()
    results: dict[str, TaskResult] = field(default_factory=dict)
    _per_query: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> GroupKey:
        return (self.backbone, self.label)

    def per_query(self, task: str) -> dict[str, np.ndarray]:
        """The task's per-query arrays (read once, then kept)."""
        if task not in self._per_query:
            result = self.results.get(task)
            self._per_query[task] = (
                {} if result is None else read_per_query(result_path(self.run_dir / "results", task), result)
            )
        return self._per_query[task]


@dataclass
class Study:
    """A study directory read back: its metadata and every run's results."""

    study_dir: Path
    meta: dict[str, Any]
    runs: list[RunRecord]

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.study_dir.name))

    @property
    def reference(self) -> str:
        return str(self.meta.get("reference") or "")

    @cached_property
    def tasks(self) -> list[str]:
        configured = list(self.meta.get("config", {}).get("eval", {}).get("tasks", {}))
        found = {task for run in self.runs for task in run.results}
        return [t for t in configured if t in found] + sorted(found - set(configured))

    @cached_property
    def groups(self) -> dict[GroupKey, list[RunRecord]]:
        """Runs by (backbone, label), in study order; only runs with at least one result."""
        grouped: dict[GroupKey, list[RunRecord]] = {}
        for run in self.runs:
            if run.results:
                grouped.setdefault(run.key, []).append(run)
        return grouped

    @cached_property
    def train_languages(self) -> list[str]:
        return list(self.meta.get("config", {}).get("train", {}).get("languages") or [])

    def results_for(self, key: GroupKey, task: str) -> list[TaskResult]:
        return [run.results[task] for run in self.groups.get(key, []) if task in run.results]

    def keys(self, task: str) -> list[GroupKey]:
        """The groups with a result on ``task``, in study order."""
        return [key for key in self.groups if self.results_for(key, task)]

    def main_metric(self, task: str) -> str | None:
        """The main metric the task's results carry (None without results)."""
        results = [r for key in self.keys(task) for r in self.results_for(key, task)]
        return results[0].main_score.metric if results else None

    def reference_key(self, backbone: str) -> GroupKey | None:
        """The reference on the same backbone (the backbone's own ``reference`` when it names one), else on the
        configured ``reference_backbone`` (a cross-backbone row: described, never given a verdict)."""
        own = (self.meta.get("config", {}).get("backbones", {}).get(backbone) or {}).get("reference")
        if own and (backbone, own) in self.groups:
            return (backbone, own)
        for candidate in (backbone, self.meta.get("reference_backbone")):
            if candidate and (candidate, self.reference) in self.groups:
                return (candidate, self.reference)
        return None

    def method(self, key: GroupKey) -> Method | None:
        """The registered method of a group's runs (None for a method this polyret does not know)."""
        runs = self.groups.get(key)
        return find_method(runs[0].method) if runs else None

    def trained(self, key: GroupKey) -> bool:
        """Whether a group's method trains (a trained arm needs seeds, PROTOCOLS §7.2); unknown methods do."""
        method = self.method(key)
        return method is None or method.trained


def load_study(study_dir: str | Path) -> Study:
    """Read ``study.json`` and every result file under ``runs/`` (a missing result is simply absent)."""
    root = Path(study_dir)
    meta_path = root / "study.json"
    if not meta_path.is_file():
        raise DataError.at(meta_path, None, "not a study directory (no study.json); run `polyret compare CONFIG` first")
    meta = read_json(meta_path)
    runs: list[RunRecord] = []
    for spec in meta.get("runs", []):
        run_dir = root / "runs" / spec["name"]
        record = RunRecord(
            name=spec["name"],
            backbone=spec["backbone"],
            label=spec["label"],
            method=spec["method"],
            seed=int(spec.get("seed") or 0),
            alpha=spec.get("alpha"),
            model=str(spec.get("model")),
            run_dir=run_dir,
            done=_done(run_dir, spec.get("fingerprint")),
            kept_step=_kept_step(run_dir / "train.done.json", spec.get("train_fingerprint")),
            transductive_tasks=tuple(spec.get("transductive_tasks") or ()),
        )
        for task in spec.get("tasks", {}):
            path = result_path(run_dir / "results", task)
            marker = run_dir / "results" / f"{task}.done.json"
            if path.is_file() and _marker_ok(marker, spec.get("eval_fingerprints", {}).get(task)):
                record.results[task] = read_result(path)
        runs.append(record)
    return Study(study_dir=root, meta=meta, runs=runs)


def _marker_ok(path: Path, fingerprint: str | None) -> bool:
    """A result counts only when its done marker matches the current config (stale results are ignored)."""
    if not path.is_file():
        return False
    try:
        return fingerprint is None or read_json(path).get("fingerprint") == fingerprint
    except (PolyretError, AttributeError):
        return False


def _kept_step(marker: Path, fingerprint: str | None) -> int | None:
    if not _marker_ok(marker, fingerprint):
        return None
    step = read_json(marker).get("kept_step")
    return None if step is None else int(step)


def _done(run_dir: Path, fingerprint: str | None) -> bool:
    return _marker_ok(run_dir / "done.json", fingerprint)


# --------------------------------------------------------------------------- scores


def overall_scores(result: TaskResult) -> dict[str, float]:
    """The overall numbers of one result: its 'all' aggregate (or the first overall one) plus the main score."""
    scores: dict[str, float] = {}
    for name in OVERALL_AGGREGATES:
        if name in result.aggregates:
            scores.update(result.aggregates[name])
            break
    scores[result.main_score.metric] = result.main_score.value
    return {k: float(v) for k, v in scores.items() if isinstance(v, int | float) and not is_count(k)}


def headline_metrics(task: str, results: Sequence[TaskResult]) -> list[str]:
    """The main metric, then the task's preferred metrics that the results report (else all of them)."""
    if not results:
        return []
    available: list[str] = []
    for result in results:
        for key in overall_scores(result):
            if key not in available:
                available.append(key)
    main = results[0].main_score.metric
    meta = find_task(task)
    preferred = [m for m in (meta.headline if meta else ()) if m in available and m != main]
    if not preferred:
        preferred = [m for m in available if m != main][:6]
    return [main, *preferred]


def group_stat(study: Study, key: GroupKey, task: str, metric: str) -> Stat | None:
    """Mean ± std over the seeds of one group of an overall metric."""
    return Stat.of(overall_scores(r).get(metric, math.nan) for r in study.results_for(key, task))


def languages_of(results: Iterable[TaskResult]) -> list[str]:
    seen: list[str] = []
    for result in results:
        for lang in result.languages:
            if lang not in seen:
                seen.append(lang)
    return seen


def per_language_stat(study: Study, key: GroupKey, task: str, metric: str) -> dict[str, Stat]:
    """Per language, mean ± std over seeds of ``metric``."""
    results = study.results_for(key, task)
    out: dict[str, Stat] = {}
    for lang in languages_of(results):
        stat = Stat.of(r.languages.get(lang, {}).get(metric, math.nan) for r in results)
        if stat is not None:
            out[lang] = stat
    return out


@dataclass(frozen=True)
class LanguageInfo:
    code: str
    name: str
    low_resource: bool
    bucket: str
    cc100_gib: float | None
    known: bool


def language_info(code: str) -> LanguageInfo:
    """What :mod:`polyret.data.languages` knows about a result's language code (unknown codes are marked)."""
    try:
        language = get_language(code)
    except UnknownNameError:
        return LanguageInfo(code, code, False, "unknown", None, False)
    # key_name: a UDHR version key is named after its version ("Swahili (Chimwiini)"), not just its language
    return LanguageInfo(code, key_name(code), language.low_resource, language.bucket, language.cc100_gib, True)


def order_languages(codes: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split codes into (low-resource, other), each sorted by CC-100 size ascending (absent first), then code."""
    infos = [language_info(code) for code in codes]

    def size(info: LanguageInfo) -> tuple[float, str]:
        return (-1.0 if info.cc100_gib is None else info.cc100_gib, info.code)

    low = sorted((i for i in infos if i.low_resource), key=size)
    other = sorted((i for i in infos if not i.low_resource), key=size)
    return [i.code for i in low], [i.code for i in other]


def is_unseen(study: Study, code: str) -> bool:
    """A language that the training data did not cover (needs ``train.languages`` in the study config)."""
    if not study.train_languages:
        return False
    try:
        trained = {get_language(c).code for c in study.train_languages}
        return get_language(code).code not in trained
    except UnknownNameError:
        return code not in study.train_languages


# --------------------------------------------------------------------------- per-query values


def per_query_key(arrays: dict[str, np.ndarray], lang: str, metric: str) -> str | None:
    """The npz key holding ``metric`` for ``lang``: exact, else the same setting's first per-query array."""
    exact = f"{lang}/{metric}"
    if exact in arrays:
        return exact
    setting = metric.split(".")[0]
    candidates = [k for k in arrays if k.startswith(f"{lang}/{setting}.") and not k.endswith("query_ids")]
    return candidates[0] if len(candidates) == 1 else None


def per_query_scale(study: Study, key: GroupKey, task: str, metric: str) -> float:
    """100 when the per-query arrays hold fractions of the ×100 values the result reports, else 1.

    Tasks store per-query values as fractions (hits 0/1, AP in [0, 1]) but per-language values ×100; rank
    distances are stored as is. The factor is read off the data: the one that maps the per-query mean of a
    language onto its reported value.
    """
    for run in study.groups.get(key, []):
        result = run.results.get(task)
        if result is None:
            continue
        arrays = run.per_query(task)
        for lang, values in result.languages.items():
            reported = values.get(metric)
            value_key = per_query_key(arrays, lang, metric)
            if reported is None or value_key is None:
                continue
            column = arrays[value_key].astype(np.float64)
            column = column[np.isfinite(column)]
            if column.size == 0 or reported == 0:
                continue
            mean = float(column.mean())
            return 100.0 if abs(mean * 100 - reported) < abs(mean - reported) else 1.0
    return 1.0


def alpha_curves(study: Study, task: str, metric: str) -> dict[str, list[tuple[float, Stat]]]:
    """Per backbone, (α, group stat) of the methods on the hybrid's α axis: the swept runs at their α, the others at
    the α they equal (X-Y 0, X-X-mono 1). Only backbones with a swept point strictly inside (0, 1) and two points."""
    curves: dict[str, list[tuple[float, Stat]]] = {}
    for key in study.keys(task):
        method = study.method(key)
        if method is None:
            continue
        alpha = study.groups[key][0].alpha if method.sweeps_alpha else method.alpha_equivalent
        stat = group_stat(study, key, task, metric)
        if alpha is not None and stat is not None:
            curves.setdefault(key[0], []).append((float(alpha), stat))
    return {name: pts for name, pts in curves.items() if len(pts) >= 2 and any(0 < a < 1 for a, _ in pts)}


def is_stand_in(results: Iterable[TaskResult]) -> bool:
    """Whether any result was produced by a stand-in model (the encoder records ``stand_in: true``)."""
    return any(result.model.get("stand_in") is True for result in results)


def task_config(results: Sequence[TaskResult]) -> dict[str, Any]:
    """The task options recorded in the first result (every seed of a group shares them)."""
    return dict(results[0].config) if results else {}


def compact(value: Any) -> str:
    """``value`` as one line of JSON, cut at 300 characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= 300 else text[:297] + "…"


# --------------------------------------------------------------------------- items and seeds (PROTOCOLS §7.1, §7.2)


@dataclass(frozen=True)
class SeedValues:
    """One language's per-query values of a group: one row per seed, columns aligned by query id."""

    query_ids: np.ndarray
    item_ids: np.ndarray
    values: np.ndarray  # (seeds, queries)


def group_seed_values(
    study: Study, key: GroupKey, task: str, metric: str, languages: Sequence[str] | None = None
) -> dict[str, SeedValues]:
    """Per language: each seed's per-query values on the queries every seed has (in the first seed's order).

    Languages missing from any seed, or without per-query arrays, are left out; items come from the first seed's
    ``item_ids`` (:func:`polyret.eval.results.per_query_items`: one item per query in older files).
    """
    per_seed = [run.per_query(task) for run in study.groups.get(key, []) if task in run.results]
    per_seed = [arrays for arrays in per_seed if arrays]
    out: dict[str, SeedValues] = {}
    for lang in languages or languages_of(study.results_for(key, task)):
        columns: list[tuple[dict[Any, int], np.ndarray]] = []
        for arrays in per_seed:
            value_key = per_query_key(arrays, lang, metric)
            if value_key is None:
                break
            values = arrays[value_key].astype(np.float64)
            ids = arrays.get(f"{lang}/query_ids")
            ids = np.arange(values.size) if ids is None else ids
            columns.append(({q: i for i, q in enumerate(ids.tolist())}, values))
        if not columns or len(columns) < len(per_seed):
            continue
        first = list(columns[0][0])
        common = [q for q in first if all(q in position for position, _ in columns[1:])]
        if common:
            items = per_query_items(per_seed[0], lang, columns[0][1].size)
            mine = [columns[0][0][q] for q in common]
            rows = np.stack([values[[position[q] for q in common]] for position, values in columns])
            out[lang] = SeedValues(np.asarray(common), items[mine], rows)
    return out


def paired_sample(
    study: Study,
    key: GroupKey,
    reference: GroupKey,
    task: str,
    metric: str,
    languages: Sequence[str] | None = None,
    *,
    trained: tuple[bool, bool] = (True, True),
) -> PairedSample | None:
    """The per-seed, per-query values of ``key`` and ``reference`` on the queries both have, with items and languages.

    ``trained`` says whether each arm is trained (needs seeds). Queries with a non-finite value in any seed are left
    out (MLQA-R cross values of items lacking every other language); None when nothing is left.
    """
    mine = group_seed_values(study, key, task, metric, languages)
    theirs = group_seed_values(study, reference, task, metric, languages)
    a_parts: list[np.ndarray] = []
    b_parts: list[np.ndarray] = []
    items: list[np.ndarray] = []
    strata: list[np.ndarray] = []
    for lang, values in mine.items():
        if lang not in theirs:
            continue
        position = {q: i for i, q in enumerate(theirs[lang].query_ids.tolist())}
        pairs = [(i, position[q]) for i, q in enumerate(values.query_ids.tolist()) if q in position]
        if pairs:
            a_idx, b_idx = (np.asarray(p) for p in zip(*pairs, strict=True))
            a_parts.append(values.values[:, a_idx])
            b_parts.append(theirs[lang].values[:, b_idx])
            items.append(values.item_ids[a_idx])
            strata.append(np.full(a_idx.size, lang))
    if not a_parts:
        return None
    a, b = np.concatenate(a_parts, axis=1), np.concatenate(b_parts, axis=1)
    keep = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)
    if not keep.any():
        return None
    scale = per_query_scale(study, key, task, metric)
    return PairedSample(
        Arm(a[:, keep] * scale, trained=trained[0]),
        Arm(b[:, keep] * scale, trained=trained[1]),
        items=np.concatenate(items)[keep],
        strata=np.concatenate(strata)[keep],
    )
