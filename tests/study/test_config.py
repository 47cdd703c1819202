from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from polyret.errors import ConfigError
from polyret.study.config import expand_runs, load_study_config, parse_study_config
from polyret.train.config import ContrastiveConfig
from polyret.train.criss.config import CrissConfig

BASE = {
    "name": "demo",
    "backbones": {"e5-small": "multilingual-e5-small", "mbart": {"model": "facebook/mbart-large-cc25"}},
    "methods": [
        "zero-shot",
        "mono",
        "xy",
        {"method": "hybrid", "alpha": [0.5, 0.25]},
        {"method": "criss", "backbones": ["mbart"], "settings": {"tatoeba": {"languages": ["kk"]}}},
    ],
    "seeds": [0, 1],
    "train": {"data": ["mlqa-r"], "max_steps": 30, "batch_size": 16, "settings": {"loss": {"temperature": 0.05}}},
    "eval": {"tasks": {"tatoeba": {"languages": ["sw"], "max_sentences": 50}, "udhr": None}},
    "reference": "zero-shot",
}


# the default selection rule as the trainer reads it (PROTOCOLS §6.2)
SHARED_VALIDATION = {
    "languages": ["en"],
    "fraction": 0.05,
    "batch_size": 32,
    "batches": 4,
    "eval_steps": 100,
    "patience": 3,
    "seed": 0,
    "policy": "mono",
}


def parse(**changes):
    payload = {**BASE, **changes}
    return parse_study_config(payload, "study.yaml")


def test_expansion_names_and_counts():
    runs = expand_runs(parse())
    names = [run.name for run in runs]
    assert names[:2] == ["e5-small__zero-shot", "mbart__zero-shot"]  # zero-shot: once per backbone, no seed
    assert "e5-small__hybrid-a0.5__s0" in names and "e5-small__hybrid-a0.25__s1" in names
    assert "mbart__criss__s1" in names and "e5-small__criss__s0" not in names  # restricted to its backbone
    # 2 zero-shot + (mono, xy, 2 hybrids) x 2 backbones x 2 seeds + criss x 1 backbone x 2 seeds
    assert len(runs) == 2 + 4 * 2 * 2 + 2
    assert len(set(names)) == len(names)


def test_train_settings_per_method():
    runs = {run.name: run for run in expand_runs(parse())}
    hybrid = runs["e5-small__hybrid-a0.25__s1"]
    assert hybrid.train == {
        "method": "hybrid",
        "model": "multilingual-e5-small",
        "seed": 1,
        "data": ["mlqa-r"],
        "max_steps": 30,
        "batch_size": 16,
        "alpha": 0.25,
        "loss": {"temperature": 0.05},
        "validation": SHARED_VALIDATION,
    }
    criss = runs["mbart__criss__s0"]  # the contrastive keys are not forced on CRISS's own config
    assert criss.train == {
        "method": "criss",
        "model": "facebook/mbart-large-cc25",
        "seed": 0,
        "tatoeba": {"languages": ["kk"]},
    }
    assert runs["e5-small__zero-shot"].train is None and not runs["e5-small__zero-shot"].trained


def test_trained_runs_carry_their_typed_config_as_written():
    """The study hands the trainer the typed config; nothing passes through the command-line override channel,
    which drops top-level nulls (`save_total_limit: null` means no limit, not the default 2)."""
    settings = {"loss": {"temperature": 0.05}, "save_total_limit": None}
    runs = {run.name: run for run in expand_runs(parse(train={**BASE["train"], "settings": settings}))}
    hybrid = runs["e5-small__hybrid-a0.25__s1"].config
    assert isinstance(hybrid, ContrastiveConfig) and hybrid.alpha == 0.25 and hybrid.seed == 1
    assert hybrid.save_total_limit is None and hybrid.max_steps == 30
    criss = runs["mbart__criss__s0"].config
    assert isinstance(criss, CrissConfig) and criss.model == "facebook/mbart-large-cc25"
    assert runs["e5-small__zero-shot"].config is None


def test_fingerprints_are_stable_and_scoped():
    first = {run.name: run for run in expand_runs(parse())}
    again = {run.name: run for run in expand_runs(parse())}
    assert all(first[name].fingerprint == again[name].fingerprint for name in first)
    # changing one task's options changes only that task's eval fingerprint, never the training one
    tasks = {"tatoeba": {"languages": ["sw"], "max_sentences": 60}, "udhr": {}}
    changed = {run.name: run for run in expand_runs(parse(eval={"tasks": tasks}))}
    for name, run in changed.items():
        assert run.train_fingerprint == first[name].train_fingerprint
        assert run.eval_fingerprints["udhr"] == first[name].eval_fingerprints["udhr"]
        assert run.eval_fingerprints["tatoeba"] != first[name].eval_fingerprints["tatoeba"]
    # changing the budget retrains the contrastive runs only
    budget = {run.name: run for run in expand_runs(parse(train={**BASE["train"], "max_steps": 31}))}
    assert budget["e5-small__mono__s0"].train_fingerprint != first["e5-small__mono__s0"].train_fingerprint
    assert budget["mbart__criss__s0"].train_fingerprint == first["mbart__criss__s0"].train_fingerprint
    assert budget["e5-small__zero-shot"].fingerprint == first["e5-small__zero-shot"].fingerprint


def test_reference_default_and_tasks_as_list():
    config = parse(reference=None, eval={"tasks": ["tatoeba", "udhr"]})
    assert config.reference_label() == "zero-shot"
    assert config.eval.tasks == {"tatoeba": {}, "udhr": {}}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"methods": ["zero-shot", "best"]}, "study.yaml: methods.1.method: unknown method 'best'; valid: criss,"),
        ({"methods": [{"method": "mono", "alpha": [0.5]}]}, "methods.0: alpha applies to method hybrid only, not mono"),
        ({"methods": [{"method": "hybrid", "alpha": [1.5]}]}, "methods.0.alpha: every alpha must lie in [0, 1]"),
        ({"methods": [{"method": "criss", "backbones": ["labse"]}]}, "unknown backbones ['labse']"),
        ({"reference": "hybrid-a0.7"}, "reference 'hybrid-a0.7' is not one of the methods"),
        ({"backbones": {"e5 small": "x"}}, "name 'e5 small' must be letters"),
        ({"seeds": [0, 0]}, "seeds: give distinct seeds"),
        ({"eval": {"tasks": {}}}, "eval.tasks: name at least one task"),
        ({"eval": {"tasks": {"tatoebaa": {}}}}, "eval.tasks: unknown task 'tatoebaa'; valid:"),
        ({"eval": {"tasks": {"tatoeba": {"max_sentence": 9}}}}, "eval.tasks.tatoeba: unknown option 'max_sentence'"),
        (
            {"eval": {"tasks": {"tatoeba": {"max_sentences": 0}}}},
            "study.yaml: eval.tasks.tatoeba: max_sentences: Input should be greater than or equal to 1",
        ),
        ({"eval": {"tasks": {"udhr": {"articles": "some"}}}}, "study.yaml: eval.tasks.udhr: articles"),
        ({"eval": {"tasks": {"udhr": {"pooling": 3}}}}, "study.yaml: eval.tasks.udhr: pooling: Input should be"),
        (
            {"train": {"data": ["mlqa-r"], "settings": {"optim": {"lr": -1}}}},
            "study.yaml: run e5-small__mono__s0: optim.lr: Input should be greater than 0",
        ),
        (
            {"methods": ["zero-shot", {"method": "criss", "backbones": ["mbart"], "settings": {"iterations": 0}}]},
            "study.yaml: run mbart__criss__s0: iterations: Input should be greater than or equal to 1",
        ),
        ({"trian": {}}, "trian: Extra inputs are not permitted"),
        ({"methods": ["mono", "mono"]}, "methods: ['mono'] listed twice"),
    ],
)
def test_errors_are_one_line_and_name_the_key(changes, expected):
    with pytest.raises(ConfigError) as info:
        parse(**changes)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_load_errors_name_the_file(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"missing\.yaml: study config not found"):
        load_study_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nbackbones: {a: b\nmethods: [mono]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+: malformed YAML"):
        load_study_config(broken)
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"list\.yaml: a study config is a YAML mapping"):
        load_study_config(not_mapping)


SHIPPED_STUDIES = sorted(
    path.name
    for path in (Path(__file__).resolve().parents[2] / "configs").glob("*.yaml")
    if "backbones" in yaml.safe_load(path.read_text(encoding="utf-8"))
)


@pytest.mark.parametrize("name", SHIPPED_STUDIES)
def test_shipped_configs_are_valid(name: str):
    """The shipped studies pass the checks loading makes before any work: task options against the tasks' options
    models, every run's training config against its method's config model."""
    path = Path(__file__).resolve().parents[2] / "configs" / name
    config = load_study_config(path)
    runs = expand_runs(config)
    assert runs and yaml.safe_load(path.read_text(encoding="utf-8"))["name"] == config.name
    assert config.reference_label() in {run.label for run in runs}
    assert all((run.config is None) == (not run.trained) for run in runs)
    assert all(run.config.method == run.method for run in runs if run.config is not None)


def test_one_selection_rule_reaches_every_arm():
    methods = [*BASE["methods"], {"method": "criss-contrastive", "settings": {"tatoeba": {"languages": ["kk"]}}}]
    runs = {run.name: run for run in expand_runs(parse(methods=methods))}
    for name in ("e5-small__mono__s0", "e5-small__xy__s1", "e5-small__hybrid-a0.5__s0"):
        assert runs[name].train["validation"] == SHARED_VALIDATION  # the same items, batches and loss for every arm
    contrastive = runs["e5-small__criss-contrastive__s0"].train
    assert contrastive["validate_on"] == "contrastive"  # not its own mined pairs
    assert contrastive["contrastive"]["validation"] == {**SHARED_VALIDATION, "holdout_of": ["mlqa-r"]}
    assert "validation" not in runs["mbart__criss__s0"].train  # translation keeps its own loss (see docs/study.md)


def test_fixed_steps_selection():
    methods = [*BASE["methods"], {"method": "criss-contrastive", "settings": {"tatoeba": {"languages": ["kk"]}}}]
    train = {**BASE["train"], "max_steps": None}
    runs = {run.name: run for run in expand_runs(parse(methods=methods, train=train, selection={"fixed_steps": 7}))}
    assert runs["e5-small__xy__s0"].train["max_steps"] == 7
    assert runs["e5-small__xy__s0"].train["validation"] == {"fraction": 0.0}
    assert runs["e5-small__criss-contrastive__s0"].train["contrastive"]["max_steps"] == 7
    assert runs["mbart__criss__s0"].train["train"]["max_steps"] == 7


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"train": {**BASE["train"], "settings": {"validation": {"fraction": 0.1}}}}, "train.settings: validation:"),
        (
            {"methods": [{"method": "criss-contrastive", "settings": {"contrastive": {"validation": {}}}}]},
            "methods.criss-contrastive.settings: contrastive.validation:",
        ),
        ({"selection": {"fixed_steps": 5, "validation": {}}}, "give either validation or fixed_steps"),
        ({"selection": {"fixed_steps": 5}}, "train.max_steps: with selection.fixed_steps"),
        (
            {"methods": ["criss-contrastive"], "train": {}, "reference": None},
            "the shared validation set is held out of train.data",
        ),
    ],
)
def test_an_arm_cannot_bring_its_own_selection(changes, expected):
    with pytest.raises(ConfigError) as info:
        parse(**changes)
    assert expected in str(info.value)
