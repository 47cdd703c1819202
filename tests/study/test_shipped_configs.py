"""Every shipped config in configs/ can start: validated, its data read, its samplers and validation batches built.

No training: this is what fails before a run's first step (paper.yaml's validation batch of 100 over the 57
held-out English MLQA-R items did, for every mono / xy / hybrid run).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from polyret.io import read_yaml
from polyret.study.config import expand_runs, load_study_config
from polyret.train.config import CONTRASTIVE_METHODS, load_train_config
from polyret.train.contrastive import check_training_plan

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
STUDIES = [path for path in CONFIGS if "backbones" in read_yaml(path)]
TRAIN_CONFIGS = [path for path in CONFIGS if path not in STUDIES]


def _check_contrastive(train: dict) -> None:
    """A contrastive run's plan, or a criss-contrastive run's shared validation batches (built on stand-in pairs)."""
    if train["method"] in CONTRASTIVE_METHODS:
        check_training_plan(load_train_config(None, overrides=train)[1])
    elif train.get("validate_on") == "contrastive" and train["contrastive"]["validation"].get("holdout_of"):
        count = 2 * train["contrastive"].get("batch_size", 100)  # enough mined pairs for the training batches
        pairs = [("de", f"satz {i}", "en", f"sentence {i}") for i in range(count)]
        model = {**train["contrastive"].get("model", {}), "name": "unused: no model is loaded"}
        check_training_plan({**train["contrastive"], "method": "xy", "model": model}, pairs)


@pytest.mark.integration
@pytest.mark.parametrize("path", STUDIES, ids=lambda path: path.name)
def test_every_run_of_a_shipped_study_can_start(path: Path, shared_data: Path):
    from polyret.study.runner import check_train_settings

    config = load_study_config(path)
    runs = expand_runs(config)
    check_train_settings(runs, path)
    seen = set()
    for run in runs:  # seeds do not change whether a run can start; one per (backbone, label)
        if run.trained and (run.backbone, run.label) not in seen:
            seen.add((run.backbone, run.label))
            _check_contrastive(dict(run.train))


@pytest.mark.integration
@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda path: path.name)
def test_every_shipped_training_config_can_start(path: Path, shared_data: Path):
    method, config = load_train_config(path)
    if method in CONTRASTIVE_METHODS:
        plan = check_training_plan(config)
        assert plan.total_steps >= 1 and (plan.validation_batches or not config.validation.enabled)
    elif method == "tli":
        from polyret.train.tli import parse_tli_config

        parse_tli_config(config)
    else:
        from polyret.train.criss.config import load_criss_config

        load_criss_config(config, path)
