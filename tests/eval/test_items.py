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
