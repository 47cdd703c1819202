"""The method and task registries: every entry resolves, and what it declares matches what it implements."""

from __future__ import annotations

import inspect

import pytest

from polyret.eval.options import ENCODER_OPTIONS, TaskOptions
from polyret.eval.tasks import TASKS, get_spec
from polyret.train.methods import METHODS, get_method, method_names

#: evaluate-function arguments that are not config options: the encoder, where results go, Python objects
NOT_OPTIONS = {"encoder", "output_dir", "corpus"}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_tasks_options_model_declares_exactly_its_functions_keyword_arguments(name: str):
    task = get_spec(name)
    model = task.options_model()
    assert issubclass(model, TaskOptions)
    parameters = set(inspect.signature(task.load()).parameters) - NOT_OPTIONS - set(task.fixed)
    assert set(model.model_fields) == parameters


@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_tasks_metadata_is_consistent(name: str):
    task = get_spec(name)
    assert task.main_score not in task.lower_is_better
    assert task.lower_is_better <= {task.main_score, *task.headline}
    assert set(task.figures) <= {"per-language", "rank-distance", "alpha-sweep", "cc100"}
    assert not (task.first_articles and task.article_set)  # `articles` means one thing per task
    assert ("rank-distance" in task.figures) == bool(task.lower_is_better)


def test_encoder_options_are_the_encoders_keywords():
    from polyret.eval.run import EvalOptions

    assert set(ENCODER_OPTIONS) == set(EvalOptions().encoder_kwargs())


@pytest.mark.parametrize("name", method_names(trained=True))
def test_a_trained_method_has_a_config_with_method_and_seed_and_a_runner(name: str):
    method = get_method(name)
    assert {"method", "seed"} <= set(method.config_model().model_fields)
    assert callable(method.parse) and method.runner is not None and method.trains_on
    assert callable(method.runner_function())  # it resolves (torch may load: this is the trainer's module)


def test_untrained_methods_train_nothing():
    untrained = [method for method in METHODS.values() if not method.trained]
    assert [method.name for method in untrained] == ["zero-shot"]
    assert untrained[0].labels(None) == ["zero-shot"] and untrained[0].trains_on is None


def test_alpha_facts():
    swept = [method for method in METHODS.values() if method.sweeps_alpha]
    assert [method.name for method in swept] == ["hybrid"]
    assert swept[0].labels([0.5, 0.25]) == ["hybrid-a0.5", "hybrid-a0.25"] and swept[0].default_alpha == (0.5,)
    assert {m.name: m.alpha_equivalent for m in METHODS.values() if m.alpha_equivalent is not None} == {
        "mono": 1.0,
        "xy": 0.0,
    }


def test_the_mining_methods_are_flagged_for_the_fairness_checks():
    assert {m.name for m in METHODS.values() if m.mines_text} == {"criss", "criss-contrastive"}
    assert get_method("criss").backbone == "seq2seq" and get_method("criss").stand_in_banner
