"""Whether two results may be compared at all (PROTOCOLS §6.1, §6.3, §6.4): the same recorded evaluation settings,
no transductive result, one backbone.

A verdict between two results is the method's only when everything else was equal. Each result records how it
was produced: the encoder's ``model`` description (prefixes, max length, pooling, precision, backend) and the task's
``config`` (candidate text, subsets, languages, max length); :func:`settings_differences` lists the keys where two
results differ. The report shows "not comparable: <keys>" instead of a verdict for such a pair, and the claims
code calls the same function.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from polyret.eval.results import TaskResult
from polyret.report.tables import GroupKey, Study

#: what the encoder description records that changes scores (the model's path and cache location do not)
ENCODER_KEYS = (
    "query_prefix",
    "passage_prefix",
    "max_length",
    "pooling",
    "layer",
    "pool_special_tokens",
    "normalize",
    "precision",
    "dtype",
    "backend",
)
#: what a result written before its encoder recorded a key was produced with (every encoder ran on torch before
#: the onnx backend came, so such a result compares equal with a torch one)
ENCODER_DEFAULTS: dict[str, Any] = {"backend": "torch"}
#: task-config keys that say where files were read from or how texts were batched, never what was scored
NEUTRAL_CONFIG_KEYS = frozenset({"files", "eval_options", "model_argument", "batch_size", "name", "cache"})


def recorded_settings(result: TaskResult) -> dict[str, Any]:
    """The settings of ``result`` that a comparison must hold equal, by key (encoder keys, then task options, then
    the languages scored)."""
    recorded = {**ENCODER_DEFAULTS, **result.model}
    settings: dict[str, Any] = {key: recorded[key] for key in ENCODER_KEYS if key in recorded}
    settings.update({key: value for key, value in result.config.items() if key not in NEUTRAL_CONFIG_KEYS})
    settings["languages"] = sorted(result.languages)
    return settings


def settings_differences(result_a: TaskResult, result_b: TaskResult) -> list[str]:
    """The recorded settings (keys, sorted) in which two results differ; empty when they may be compared."""
    a, b = recorded_settings(result_a), recorded_settings(result_b)
    return sorted(key for key in a.keys() | b.keys() if a.get(key) != b.get(key))


def group_differences(study: Study, key: GroupKey, reference: GroupKey, task: str) -> list[str]:
    """Every setting in which a result of ``key`` differs from a result of ``reference`` on ``task``, plus
    ``backbone`` when the groups run on different backbones (PROTOCOLS §6.4: never a verdict across backbones)."""
    differences = {"backbone"} if key[0] != reference[0] else set()
    for result in study.results_for(key, task):
        for other in study.results_for(reference, task):
            differences.update(settings_differences(result, other))
    return sorted(differences)


def transductive_groups(study: Study, keys: Iterable[GroupKey], task: str) -> list[GroupKey]:
    """The groups among ``keys`` some of whose runs trained on ``task``'s own text (PROTOCOLS §6.3)."""
    return [key for key in keys if any(task in run.transductive_tasks for run in study.groups.get(key, []))]


def group_name(key: GroupKey) -> str:
    return f"{key[0]} / {key[1]}"


def comparison_obstacle(study: Study, key: GroupKey, reference: GroupKey, task: str) -> str | None:
    """Why ``key`` gets no verdict against ``reference`` on ``task`` ("transductive: ..." or "not comparable:
    <keys>"), or None when the two may be compared; the significance table, the per-language tables and figures
    and the claims all ask this one function."""
    transductive = transductive_groups(study, (key, reference), task)
    if transductive:
        return f"transductive: {', '.join(map(group_name, transductive))} trained on its text"
    differences = group_differences(study, key, reference, task)
    if differences:
        return f"not comparable: {', '.join(differences)}"
    return None
