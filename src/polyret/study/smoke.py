"""A smoke run of any study (``polyret compare CONFIG --smoke``): every run, tiny, before GPU hours are spent.

The smoke study is the study itself with: each backbone replaced by a tiny randomly initialised model of the same
architecture family and module stack (:mod:`polyret.encode.tiny`, built offline), one seed, every method's smoke
settings (at most 2 training steps; every CRISS stage), the selection rule evaluated every step, and each task's
``smoke_options`` (a few items per language). Real data readers, the real trainers, the real report. It is
written as ``smoke.yaml`` into the smoke study directory and run like any study.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from polyret.encode.tiny import build_tiny_backbone
from polyret.eval.tasks import get_spec
from polyret.io import atomic_write, read_yaml
from polyret.study.config import SMOKE_STEPS, load_study_config

SMOKE_CONFIG = "smoke.yaml"


def smoke_payload(payload: dict[str, Any], models: dict[str, str]) -> dict[str, Any]:
    """The smoke version of a study mapping; ``models`` maps each backbone name to its tiny stand-in folder."""
    smoke = copy.deepcopy(payload)
    smoke["name"] = f"{payload['name']}-smoke"
    smoke["smoke"] = True
    for name, spec in smoke["backbones"].items():
        spec = {"model": spec} if isinstance(spec, str) else spec
        smoke["backbones"][name] = {**spec, "model": models[name], "published_as": spec.get("published_as") or name}
    smoke["seeds"] = list(payload.get("seeds") or [0])[:1]
    selection = dict(smoke.get("selection") or {})
    if selection.get("fixed_steps") is not None:
        selection["fixed_steps"] = SMOKE_STEPS
    else:
        selection["validation"] = {**(selection.get("validation") or {}), "eval_steps": 1, "batches": 1}
        smoke.setdefault("train", {})["max_steps"] = SMOKE_STEPS
    smoke["selection"] = selection
    tasks = smoke["eval"]["tasks"]
    tasks = {name: {} for name in tasks} if isinstance(tasks, list) else tasks
    smoke["eval"]["tasks"] = {task: _smoke_options(task, options or {}) for task, options in tasks.items()}
    return smoke


def _smoke_options(task: str, options: dict[str, Any]) -> dict[str, Any]:
    """The task's smoke options over the study's; a study's own language list is cut to its first two."""
    smoke = {**options, **get_spec(task).smoke_options, "show_progress": False}
    if isinstance(options.get("languages"), list):
        smoke["languages"] = options["languages"][:2]
    return smoke


def prepare_smoke_study(config_path: str | Path, study_dir: Path) -> Path:
    """Build the tiny backbones (reused when already there) and write the smoke config; return its path."""
    config = load_study_config(config_path)  # the real study must be valid first
    models = {
        name: str(build_tiny_backbone(spec.model, study_dir / "tiny-models" / name))
        for name, spec in config.backbones.items()
    }
    payload = smoke_payload(read_yaml(Path(config_path), "study config"), models)
    target = study_dir / SMOKE_CONFIG
    study_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as handle:
        yaml.safe_dump(payload, handle, sort_keys=False, allow_unicode=True)
    load_study_config(target)  # fails here, naming the key, if the smoke settings do not fit a method's config
    return target
