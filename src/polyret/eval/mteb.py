"""MTEB-format results: one MTEB ``TaskResult``-shaped JSON per task, beside polyret's own result files.

MTEB's layout (``mteb/results/task_result.py`` in embeddings-benchmark/mteb)::

    {"dataset_revision": "...", "task_name": "Tatoeba", "mteb_version": null, "evaluation_time": 12.3,
     "kg_co2_emissions": null, "date": 1764086400.0,
     "scores": {"test": [{"hf_subset": "swh-eng", "languages": ["swh-Latn", "eng-Latn"],
                          "main_score": 0.72, "f1": 0.72, "precision": 0.70, "recall": 0.76, "accuracy": 0.76}]}}

Scores are on a 0–1 scale (polyret's are x100). ``mteb_version`` stays null: the numbers come from polyret, not from
running mteb; the ``polyret`` block says which result and metrics they were taken from. Each task declares how it
appears (:class:`MtebNames`, on its :class:`polyret.eval.tasks.TaskMetadata`): MTEB's task, subset and language-script
names where MTEB has the same task under the same protocol, a ``polyret-`` name otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyret.data.languages import get_language, key_script
from polyret.io import write_json

if TYPE_CHECKING:  # the task registry imports MtebNames; numpy stays unloaded for `polyret --help`
    from polyret.eval.results import TaskResult

MTEB_DIR = "mteb"


@dataclass(frozen=True)
class MtebNames:
    """How one polyret task is written in MTEB's results format.

    ``metrics`` maps MTEB score names to polyret per-language metric keys (x100 values, divided by 100 here);
    ``main_score`` is one of those MTEB names. ``subset`` and ``languages`` are patterns filled per language with
    ``{key}`` (the result's language key), ``{code}`` (polyret's ISO 639-1 code, else ISO 639-3), ``{iso3}``,
    ``{tatoeba}`` (LASER's file code, an individual-language ISO 639-3 code: ``swh``, ``cmn``) and ``{script}``
    (ISO 15924, from the key).
    ``scripts`` overrides the script where MTEB's declaration differs from polyret's table (MTEB's Tatoeba writes
    Korean ``kor-Hang``, its MIRACL ``kor-Kore``).
    """

    task_name: str
    main_score: str
    metrics: Mapping[str, str]
    subset: str
    languages: tuple[str, ...]
    split: str = "test"
    dataset_revision: str = "not applicable"
    scripts: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.main_score not in self.metrics:
            raise ValueError(f"{self.task_name}: main score {self.main_score!r} is not among {sorted(self.metrics)}")

    def fields(self, key: str) -> dict[str, str]:
        language = get_language(key)
        script = self.scripts.get(language.code) or key_script(key) or "Zzzz"
        return {
            "key": key,
            "code": language.code,
            "iso3": language.iso3,
            "tatoeba": language.tatoeba or language.iso3,
            "script": script,
        }


def _timestamp(created: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(created).timestamp()
    except ValueError:
        return None


def to_mteb(result: TaskResult, names: MtebNames) -> dict[str, Any]:
    """The MTEB ``TaskResult`` payload of one polyret result (languages lacking the main metric are left out)."""
    subsets = []
    for key, values in result.languages.items():
        main = values.get(names.metrics[names.main_score])
        if main is None:
            continue
        fields = names.fields(key)
        scores = {mteb: values[ours] / 100.0 for mteb, ours in names.metrics.items() if ours in values}
        subsets.append(
            {
                "hf_subset": names.subset.format(**fields),
                "languages": [pattern.format(**fields) for pattern in names.languages],
                "main_score": main / 100.0,
                **scores,
            }
        )
    return {
        "dataset_revision": names.dataset_revision,
        "task_name": names.task_name,
        "mteb_version": None,
        "scores": {names.split: subsets},
        "evaluation_time": result.duration_s,
        "kg_co2_emissions": None,
        "date": _timestamp(result.created),
        "polyret": {
            "task": result.task,
            "version": result.polyret_version,
            "model": result.model.get("name") or result.config.get("model_argument"),
            "metrics": dict(names.metrics),
            "scale": "0-1 (polyret's own result file holds the same values x100)",
        },
    }


def write_mteb(results: Iterable[tuple[TaskResult, MtebNames]], output_dir: str | Path) -> list[Path]:
    """Write ``output_dir/<MTEB task name>.json`` (atomically) for each ``(result, names)``; return the paths."""
    paths = []
    for result, names in results:
        path = Path(output_dir) / f"{names.task_name}.json"
        write_json(path, to_mteb(result, names))
        paths.append(path)
    return paths
