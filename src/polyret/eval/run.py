"""``polyret eval``: load one model, run several tasks, write one result JSON per task.

>>> results = run_eval("multilingual-e5-small", ["xquad-r", "tatoeba"], Path("runs/eval/e5"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from polyret.encode.base import Encoder
from polyret.encode.encoder import load_encoder
from polyret.errors import PolyretError
from polyret.eval.mteb import MTEB_DIR, write_mteb
from polyret.eval.results import TaskResult, result_path, write_result
from polyret.eval.tasks import get_spec, parse_tasks, run_task

log = logging.getLogger(__name__)

EncoderFactory = Callable[..., Encoder]


@dataclass
class EvalOptions:
    """Options for a multi-task run. ``None`` means "the task's / model's own default".

    Encoder options (``max_length``, ``pooling``, ``layer``, ``device``, ``precision``, ``backend``, ``cache``) go to
    ``load_encoder`` (``None``: its defaults, :data:`polyret.precision.DEFAULT_PRECISION` and the torch backend);
    task options (``languages``, ``candidate_text``, ``max_length``, ``batch_size``) go to every task that
    takes them, ``articles`` (first N articles per language) to the tasks whose ``articles`` means that
    (:attr:`~polyret.eval.tasks.TaskMetadata.first_articles`; UDHR's is an article set);
    ``task_options[task]`` adds options for one task only. ``max_sentences`` (first N lines per language) reaches
    the tasks that take it (Tatoeba).
    """

    languages: list[str] | None = None
    candidate_text: str | None = None
    max_length: int | None = None
    batch_size: int | None = None
    articles: int | None = None
    max_sentences: int | None = None
    pooling: str | None = None
    layer: int | None = None
    device: str | None = None
    precision: str | None = None
    backend: str | None = None
    cache: bool = True
    task_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def encoder_kwargs(self) -> dict[str, Any]:
        return {
            "max_length": self.max_length,
            "pooling": self.pooling,
            "layer": self.layer,
            "device": self.device,
            "precision": self.precision,
            "backend": self.backend,
            "cache": self.cache,
        }

    def task_kwargs(self, task: str) -> dict[str, Any]:
        shared = {
            "languages": self.languages,
            "candidate_text": self.candidate_text,
            "max_length": self.max_length,
            "batch_size": self.batch_size,
            "max_sentences": self.max_sentences,
        }
        if get_spec(task).first_articles:
            shared["articles"] = self.articles
        return {**shared, **self.task_options.get(task, {})}


class EvalFailedError(PolyretError):
    """One or more tasks failed; ``results`` holds the tasks that finished, ``failures`` (task, message)."""

    def __init__(self, failures: list[tuple[str, str]], results: list[TaskResult]) -> None:
        self.failures = failures
        self.results = results
        super().__init__("; ".join(f"{task}: {message}" for task, message in failures))


def _default_factory(model: str, **kwargs: Any) -> Encoder:
    return load_encoder(model, **{k: v for k, v in kwargs.items() if v is not None})


def run_eval(
    model: str,
    tasks: Sequence[str] | str,
    output_dir: str | Path,
    options: EvalOptions | dict[str, Any] | None = None,
    *,
    encoder: Encoder | None = None,
    encoder_factory: EncoderFactory | None = None,
    keep_going: bool = False,
) -> list[TaskResult]:
    """Evaluate ``model`` on ``tasks`` and write ``output_dir/<task>.json`` (+ per-query ``.npz``) for each.

    Task names are validated before the model loads. The encoder comes from ``encoder`` if given, else
    ``encoder_factory(model, **encoder options)`` (default: :func:`polyret.encode.encoder.load_encoder`).
    On a task's :class:`PolyretError` the run stops, unless ``keep_going``: then the other tasks still run
    and :class:`EvalFailedError` (carrying the finished results) is raised at the end.
    """
    names = parse_tasks(tasks if isinstance(tasks, str) else list(tasks))
    opts = options if isinstance(options, EvalOptions) else EvalOptions(**(options or {}))
    out = Path(output_dir)
    applied: set[str] = set()
    if encoder is None:
        factory = encoder_factory or _default_factory
        encoder = factory(model, **opts.encoder_kwargs())
        applied = {key for key, value in opts.encoder_kwargs().items() if value is not None}
    results: list[TaskResult] = []
    failures: list[tuple[str, str]] = []
    for name in names:
        started = time.perf_counter()
        log.info("task %s: model %s", name, model)
        try:
            result = run_task(name, encoder, output_dir=out, applied_to_encoder=applied, **opts.task_kwargs(name))
        except PolyretError as err:
            if not keep_going:
                raise
            log.error("task %s failed: %s", name, err)
            failures.append((name, str(err)))
            continue
        config = {
            **result.config,
            "eval_options": {k: v for k, v in asdict(opts).items() if v not in (None, {})},
            "model_argument": model,
        }
        result = result.model_copy(update={"config": config})
        if not result.duration_s:
            result = result.model_copy(update={"duration_s": round(time.perf_counter() - started, 3)})
        # Tasks write their own file (with per-query arrays) when given output_dir; write (again) so the
        # JSON always carries the run-level config. Per-query arrays stay where the task put them.
        write_result(out, result)
        results.append(result)
        log.info(
            "task %s: %s = %.2f -> %s",
            name,
            result.main_score.metric,
            result.main_score.value,
            result_path(out, result.task),
        )
    if failures:
        raise EvalFailedError(failures, results)
    return results


def write_mteb_results(results: Sequence[TaskResult], output_dir: str | Path) -> list[Path]:
    """Write each result in MTEB's format to ``output_dir/mteb/<MTEB task name>.json`` (tasks without MTEB names
    are skipped); works for any results, e.g. those of a study's runs."""
    named = [(result, get_spec(result.task).mteb) for result in results]
    return write_mteb([(result, names) for result, names in named if names is not None], Path(output_dir) / MTEB_DIR)
