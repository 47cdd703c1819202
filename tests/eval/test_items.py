from __future__ import annotations

import numpy as np

from polyret.eval.results import ItemRule, per_query_items


def test_item_rule_qualifies_per_language_ids_only():
    shared = ItemRule("question", shared_across_languages=True)
    per_language = ItemRule("sentence pair", shared_across_languages=False)
    assert shared.item_ids("de", ["q1", "q2"]).tolist() == ["q1", "q2"]
    assert per_language.item_ids("sw", np.arange(3)).tolist() == ["sw/0", "sw/1", "sw/2"]
    assert per_language.item_ids("sw", []).tolist() == []


def test_per_query_items_reads_the_key_and_falls_back_to_one_item_per_query():
    arrays = {"de/query_ids": np.asarray(["q1", "q2"]), "de/item_ids": np.asarray(["i1", "i1"])}
    assert per_query_items(arrays, "de", 2).tolist() == ["i1", "i1"]
    # files written before item ids existed: each (language, query id) is its own item
    assert per_query_items({"de/query_ids": np.asarray(["q1", "q2"])}, "de", 2).tolist() == ["de/q1", "de/q2"]
    assert per_query_items({}, "sw", 3).tolist() == ["sw/0", "sw/1", "sw/2"]


def test_the_registry_reads_each_tasks_one_item_rule():
    import importlib

    from polyret.eval.tasks import TASKS

    for task in TASKS.values():
        rule = task.item_rule()
        if isinstance(task.items, str):
            module, _, name = task.items.partition(":")
            assert rule is getattr(importlib.import_module(module), name)  # the module's ITEMS, not a copy
        else:
            assert rule is task.items
    rules = {name: task.item_rule() for name, task in TASKS.items()}
    assert rules["xquad-r"].shared_across_languages and not rules["tatoeba"].shared_across_languages
