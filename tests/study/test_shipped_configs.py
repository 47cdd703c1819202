"""Every shipped config in configs/ can start: validated, its data read, its samplers and validation batches built.

No training: this is what fails before a run's first step (paper.yaml's validation batch of 100 over the 57
held-out English MLQA-R items did, for every mono / xy / hybrid run).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from polyret.io import read_yaml
from polyret.study.config import expand_runs, load_study_config
from polyret.train.config import ContrastiveConfig
from polyret.train.contrastive import check_training_plan
from polyret.train.criss.config import CrissConfig
from polyret.train.methods import load_train_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
STUDIES = [path for path in CONFIGS if "backbones" in read_yaml(path)]
TRAIN_CONFIGS = [path for path in CONFIGS if path not in STUDIES]


def _check_plan(config: object) -> None:
    """A contrastive run's plan, or a criss-contrastive run's shared validation batches (on stand-in mined pairs)."""
    if isinstance(config, ContrastiveConfig):
        plan = check_training_plan(config)
        assert plan.total_steps >= 1 and (plan.validation_batches or not config.validation.enabled)
    elif isinstance(config, CrissConfig) and config.validate_on == "contrastive":
        count = 2 * config.contrastive.get("batch_size", 100)  # enough mined pairs for the training batches
        pairs = [("de", f"satz {i}", "en", f"sentence {i}") for i in range(count)]
        model = {**config.contrastive.get("model", {}), "name": "unused: no model is loaded"}
        check_training_plan({**config.contrastive, "method": "xy", "model": model}, pairs)


@pytest.mark.integration
@pytest.mark.parametrize("path", STUDIES, ids=lambda path: path.name)
def test_every_run_of_a_shipped_study_can_start(path: Path, shared_data: Path):
    seen = set()
    for run in expand_runs(load_study_config(path)):  # seeds do not change whether a run can start
        if run.config is not None and (run.backbone, run.label) not in seen:
            seen.add((run.backbone, run.label))
            _check_plan(run.config)


@pytest.mark.integration
@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda path: path.name)
def test_every_shipped_training_config_can_start(path: Path, shared_data: Path):
    _check_plan(load_train_config(path))


def _configured_prefixes(settings: object) -> set[tuple[str, str | None]]:
    """Every (key, value) of a query/passage prefix set anywhere in a run's training settings."""
    if isinstance(settings, dict):
        found = {(key, settings[key]) for key in ("query_prefix", "passage_prefix") if key in settings}
        return found.union(*(_configured_prefixes(value) for value in settings.values()))
    if isinstance(settings, list):
        return set().union(*(_configured_prefixes(value) for value in settings))
    return set()


@pytest.mark.parametrize("path", STUDIES, ids=lambda path: path.name)
def test_no_shipped_study_sets_prefixes_for_only_some_arms(path: Path):
    """PROTOCOLS §6.1: every arm is evaluated with the same prompts; a prefix set for some arms' training only makes
    the report call them "not comparable" with the others (paper.yaml's "Query: " on the contrastive arms did)."""
    runs = expand_runs(load_study_config(path))
    prefixes = {(run.backbone, run.label): _configured_prefixes(run.train) for run in runs}
    for backbone in {backbone for backbone, _ in prefixes}:
        arms = {label: found for (run_backbone, label), found in prefixes.items() if run_backbone == backbone}
        assert len({frozenset(found) for found in arms.values()}) == 1, f"{path.name}, {backbone}: {arms}"
