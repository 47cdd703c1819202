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
from polyret.eval.results import TaskResult

log = logging.getLogger(__name__)


class TaskUnavailableError(PolyretError):
    """A known task whose implementation cannot be imported."""


@dataclass(frozen=True)
class TaskSpec:
    """Where a task's evaluate function lives and the fixed arguments it gets."""

    name: str
    module: str
    function: str
    fixed: dict[str, Any] = field(default_factory=dict)
    description: str = ""


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "xquad-r",
            "polyret.eval.lareqa",
            "evaluate_lareqa",
            {"name": "xquad-r"},
            "LAReQA XQuAD-R: 11 languages, Mo./Cr./Mul. mAP (PROTOCOLS §3.1)",
        ),
        TaskSpec(
            "mlqa-r",
            "polyret.eval.lareqa",
            "evaluate_lareqa",
            {"name": "mlqa-r"},
            "LAReQA MLQA-R: 7 languages, Mo./Cr./Mul. mAP (PROTOCOLS §3.1)",
        ),
        TaskSpec(
            "tatoeba",
            "polyret.eval.tatoeba",
            "evaluate_tatoeba",
            {},
            "XTREME Tatoeba: top-1 accuracy en<->xx (PROTOCOLS §3.2)",
        ),
        TaskSpec("bucc", "polyret.eval.bucc", "evaluate_bucc", {}, "BUCC 2018 bitext mining F1 (PROTOCOLS §3.3)"),
        TaskSpec(
            "bucc-style",
            "polyret.eval.bucc",
            "evaluate_bucc_style",
            {},
            "BUCC-style mining of hidden Tatoeba pairs among distractors",
        ),
        TaskSpec(
            "miracl",
            "polyret.eval.miracl",
            "evaluate_miracl",
            {},
            "MIRACL dev: monolingual nDCG@10 and R@100 (PROTOCOLS §3.4)",
        ),
        TaskSpec(
            "udhr",
            "polyret.eval.udhr",
            "evaluate_udhr",
            {},
            "UDHR article retrieval P@1 over 500+ versions (PROTOCOLS §3.5)",
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
