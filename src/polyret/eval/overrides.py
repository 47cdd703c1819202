"""Per-task options from the command line: ``--task-option TASK.KEY=VALUE`` and ``--languages [TASK=]CODES``.

Values are checked against the task's options model from the task registry before any model loads; every problem
is one :class:`~polyret.errors.ConfigError` line naming the option as typed.

Languages: ``--languages CODES`` is shared by every task; ``--languages TASK=CODES`` (or ``--task-option
TASK.languages=CODES``) sets one task's and wins over the shared list. A shared list reaches a task whose language
set is closed (LAReQA, BUCC, MIRACL) as the codes that task has, and a task that has none of them is skipped;
a task with an open set (Tatoeba, UDHR) gets the whole list. So ``-t tatoeba,xquad-r --languages jv`` evaluates
Tatoeba on Javanese and skips XQuAD-R, which has no Javanese.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from polyret.errors import ConfigError, UnknownNameError
from polyret.eval.options import ENCODER_OPTIONS
from polyret.eval.tasks import get_spec
from polyret.validation import config_error


def _codes(text: str) -> list[str]:
    return [code.strip() for code in text.split(",") if code.strip()]


def _check_task(name: str, tasks: Sequence[str], option: str) -> None:
    try:
        get_spec(name)
    except UnknownNameError as err:
        raise ConfigError(f"{option}: {err}") from None
    if name not in tasks:
        raise ConfigError(f"{option}: task {name!r} is not among --task ({', '.join(tasks)})")


def _validated(task: str, key: str, text: str, option: str) -> Any:
    """``text`` as the value of the task's option ``key``: the options model converts it (a list field also takes
    comma-separated values)."""
    model = get_spec(task).options_model()
    if key not in model.model_fields:
        hint = f"; {key} is an encoder option, shared by every task: use --{key.replace('_', '-')}"
        valid = f"; valid: {', '.join(sorted(model.model_fields))}"
        raise ConfigError(f"{option}: {task} has no option {key!r}{hint if key in ENCODER_OPTIONS else valid}")
    try:
        return getattr(model.model_validate({key: text}), key)
    except ValidationError as err:
        try:
            return getattr(model.model_validate({key: _codes(text)}), key)
        except ValidationError:
            raise config_error(err, option) from None


def parse_task_options(values: Sequence[str], tasks: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["tatoeba.max_sentences=50", ...]`` -> ``{"tatoeba": {"max_sentences": 50}}``, validated."""
    options: dict[str, dict[str, Any]] = {}
    for value in values:
        option = f"--task-option {value}"
        target, equals, text = value.partition("=")
        task, dot, key = target.strip().rpartition(".")
        if not equals or not dot or not task or not key:
            raise ConfigError(f"{option}: expected TASK.KEY=VALUE, e.g. tatoeba.max_sentences=50")
        _check_task(task, tasks, option)
        options.setdefault(task, {})[key] = _validated(task, key, text.strip(), option)
    return options


@dataclass
class LanguageChoice:
    """The shared ``--languages`` list and the per-task ones."""

    shared: list[str] | None = None
    per_task: dict[str, list[str]] = field(default_factory=dict)

    def for_task(self, task: str) -> list[str] | None:
        """The languages ``task`` runs on: None for its default, [] when the shared list has none of its own."""
        if task in self.per_task:
            return self.per_task[task]
        if self.shared is None:
            return None
        own = get_spec(task).language_set
        return list(self.shared) if own is None else [code for code in self.shared if code in own]


def parse_languages(values: Sequence[str], tasks: Sequence[str]) -> LanguageChoice:
    """``["jv,sw", "xquad-r=ar,de"]`` -> one shared list and per-task lists (see the module docstring)."""
    choice = LanguageChoice()
    for value in values:
        target, equals, text = value.rpartition("=")
        option = f"--languages {value}"
        codes = _codes(text)
        if not codes:
            raise ConfigError(f"{option}: give comma-separated language codes, e.g. sw,jv or tatoeba=sw,jv")
        if not equals:
            choice.shared = [*(choice.shared or []), *codes]
            continue
        task = target.strip()
        _check_task(task, tasks, option)
        choice.per_task[task] = [*choice.per_task.get(task, []), *codes]
    return choice


@dataclass(frozen=True)
class TaskPlan:
    """What ``polyret eval`` runs: the tasks, each one's own options, and the tasks skipped (with why)."""

    tasks: list[str]
    options: dict[str, dict[str, Any]]
    skipped: dict[str, str]


def plan_tasks(tasks: Sequence[str], task_options: Sequence[str] = (), languages: Sequence[str] = ()) -> TaskPlan:
    """Combine ``--task-option`` values and ``--languages`` values for ``tasks`` (a ``TASK.languages`` option wins
    over ``--languages TASK=CODES``, which wins over the shared list)."""
    options = parse_task_options(task_options, tasks)
    choice = parse_languages(languages, tasks)
    skipped: dict[str, str] = {}
    for task in tasks:
        codes = choice.for_task(task)
        if codes == [] and "languages" not in options.get(task, {}):
            skipped[task] = f"none of --languages {','.join(choice.shared or [])} is one of its languages"
        elif codes:
            options.setdefault(task, {}).setdefault("languages", codes)
    kept = [task for task in tasks if task not in skipped]
    if not kept:
        raise ConfigError(f"no task has any of --languages {','.join(choice.shared or [])}; give TASK=CODES")
    return TaskPlan(kept, options, skipped)
