"""Sampler contracts (PROTOCOLS §1.2-1.3): kinds, languages, α, uniqueness, determinism, DDP slices."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import stats

from polyret.data.pairs import LangEntry, TrainingSet, TrainItem
from polyret.errors import DataError
from polyret.train.samplers import (
    FixedBatchSampler,
    HybridBatchSampler,
    MonoBatchSampler,
    SamplerFactory,
    TripletIndex,
    XYBatchSampler,
)

LANGS = ("de", "en", "es", "sw")


def make_set(
    name: str = "toy", n: int = 120, langs: tuple[str, ...] = LANGS, *, drop: bool = False, negatives: int = 0
) -> TrainingSet:
    """n items; with ``drop`` some items lack some languages (en always present, like MLQA-R)."""
    items = []
    for i in range(n):
        entries = {}
        for k, lang in enumerate(langs):
            if drop and lang != "en" and (i + k) % 3 == 0:
                continue
            negs = tuple(f"{name} neg {lang} {i} {j}" for j in range(negatives))
            entries[lang] = LangEntry(f"{name} q {lang} {i}", f"{name} p {lang} {i}", negs)
        items.append(TrainItem(f"{name}-{i}", entries))
    return TrainingSet(name, items)


def make_index(*sets: TrainingSet, langs: tuple[str, ...] = LANGS, negatives: int = 0) -> TripletIndex:
    return TripletIndex(list(sets) or [make_set()], langs, "query: ", "passage: ", hard_negatives=negatives)


def plans(sampler, epoch: int = 0, steps: int | None = None) -> list:
    return list(sampler.global_batches(epoch, steps))


def check_batch(index: TripletIndex, rows: list[int]) -> dict:
    """The two hard rules: no item id twice, no text twice after prefixing; returns the batch description."""
    described = index.describe(rows)
    keys = [(described["dataset"], item) for item in described["items"]]
    assert len(set(keys)) == len(keys), "an item appears twice in a batch"
    queries, positives, negatives = index.texts(rows)
    texts = queries + positives + [t for column in negatives for t in column]
    assert len(set(texts)) == len(texts), "a text appears twice in a batch"
    return described


def test_index_round_trips_rows_to_texts():
    index = make_index(make_set(drop=True))
    assert index.num_items == 120
    g = 5
    k = int(index.item_langs[g])
    for a in range(k):
        for b in range(k):
            row = index.row(g, a, b)
            queries, positives, _ = index.texts([row])
            lq = LANGS[index.item_languages(g)[a]]
            lp = LANGS[index.item_languages(g)[b]]
            assert queries == [f"query: toy q {lq} 5"]
            assert positives == [f"passage: toy p {lp} 5"]


def test_mono_batches_are_one_language_and_uniform_over_languages():
    index = make_index(make_set(n=60))
    sampler = MonoBatchSampler(range(index.num_rows), index, 10, seed=3, steps_per_epoch=800)
    counts: Counter[str] = Counter()
    for plan in plans(sampler):
        described = check_batch(index, plan.rows)
        assert described["kind"] == "mono" and len(plan.rows) == 10
        assert set(described["pairs"]) == {f"{plan.lang}-{plan.lang}"}
        counts[plan.lang] += 1
    assert set(counts) == set(LANGS)
    # chi-square goodness of fit against the uniform law (fixed seed: deterministic; p far from 0)
    assert stats.chisquare([counts[lang] for lang in LANGS]).pvalue > 0.01


def test_xy_triplets_cross_languages_and_pairs_are_uniform():
    index = make_index(make_set(n=60, langs=("de", "en", "sw")), langs=("de", "en", "sw"))
    sampler = XYBatchSampler(range(index.num_rows), index, 12, seed=1, steps_per_epoch=300)
    pair_counts: Counter[str] = Counter()
    for plan in plans(sampler):
        described = check_batch(index, plan.rows)
        assert described["kind"] == "xy" and len(plan.rows) == 12
        for pair in described["pairs"]:
            lq, lp = pair.split("-")
            assert lq != lp
            pair_counts[pair] += 1
    assert len(pair_counts) == 6  # every ordered pair of 3 languages
    assert stats.chisquare(list(pair_counts.values())).pvalue > 0.01


def test_hybrid_follows_alpha_binomial():
    index = make_index(make_set(n=80, drop=True))
    for alpha in (0.5, 0.3):
        sampler = HybridBatchSampler(range(index.num_rows), index, 8, seed=11, alpha=alpha, steps_per_epoch=1500)
        kinds = [plan.kind for plan in plans(sampler)]
        mono = kinds.count("mono")
        # two-sided exact binomial test of H0: P(mono batch) = alpha
        assert stats.binomtest(mono, len(kinds), alpha).pvalue > 0.01, (alpha, mono)
        assert set(kinds) == {"mono", "xy"}


def test_hybrid_batches_never_mix_kinds_or_datasets():
    small, large = make_set("small", n=40), make_set("large", n=160)
    index = make_index(small, large)
    sampler = HybridBatchSampler(range(index.num_rows), index, 8, seed=2, steps_per_epoch=600)
    datasets: Counter[str] = Counter()
    for plan in plans(sampler):
        described = check_batch(index, plan.rows)
        assert described["kind"] == plan.kind in ("mono", "xy")
        assert described["dataset"] == plan.dataset
        datasets[plan.dataset] += 1
    # data set drawn with p ∝ size (40 : 160)
    assert stats.binomtest(datasets["small"], sum(datasets.values()), 0.2).pvalue > 0.01


def test_english_only_data_feeds_only_mono_batches():
    english = make_set("english", n=50, langs=("en",))
    multi = make_set("multi", n=50)
    index = make_index(english, multi)
    sampler = HybridBatchSampler(range(index.num_rows), index, 8, seed=0, steps_per_epoch=300)
    for plan in plans(sampler):
        if plan.dataset == "english":
            assert plan.kind == "mono" and plan.lang == "en"


def test_duplicate_texts_and_repeated_items_never_share_a_batch():
    # items 2j and 2j+1 share their German passage, and there are few items: conflicts in most batches
    base = make_set(n=30)
    items = [
        TrainItem(item.id, {**item.langs, "de": LangEntry(f"q de {i}", f"shared passage {i // 2}")})
        for i, item in enumerate(base.items)
    ]
    index = make_index(TrainingSet("dups", items))
    sampler = HybridBatchSampler(range(index.num_rows), index, 6, seed=5, steps_per_epoch=200)
    for plan in plans(sampler):
        assert len(plan.rows) == 6  # never shrinks
        check_batch(index, plan.rows)


def test_hard_negatives_travel_with_the_passage_language():
    index = make_index(make_set(n=40, negatives=2), negatives=2)
    sampler = XYBatchSampler(range(index.num_rows), index, 8, seed=0, steps_per_epoch=5)
    for plan in plans(sampler):
        check_batch(index, plan.rows)
        _, positives, negatives = index.texts(plan.rows)
        assert len(negatives) == 2
        for positive, first in zip(positives, negatives[0], strict=True):
            lang, item = positive.split()[3:5]
            assert first == f"passage: toy neg {lang} {item} 0"


def test_items_are_drawn_without_replacement_within_an_epoch():
    index = make_index(make_set(n=64, langs=("en", "de")), langs=("en", "de"))
    sampler = XYBatchSampler(range(index.num_rows), index, 8, seed=4)
    assert len(sampler) == 8  # 64 items / 8
    items = [item for plan in plans(sampler) for item in index.describe(plan.rows)["items"]]
    assert len(items) == len(set(items)) == 64


def test_deterministic_per_seed_and_epoch():
    index = make_index(make_set(drop=True))

    def rows(seed: int, epoch: int) -> list[list[int]]:
        sampler = HybridBatchSampler(range(index.num_rows), index, 8, seed=seed)
        return [plan.rows for plan in plans(sampler, epoch)]

    assert rows(7, 0) == rows(7, 0)
    assert rows(7, 1) == rows(7, 1)
    assert rows(7, 0) != rows(7, 1)
    assert rows(7, 0) != rows(8, 0)


def test_set_epoch_and_replaying_restore_the_same_batches():
    index = make_index(make_set(drop=True))
    sampler = HybridBatchSampler(range(index.num_rows), index, 8, seed=7)
    sampler.set_epoch(2)
    first = list(sampler)
    again = list(sampler)
    assert first == again  # iterating twice (what resume's batch skipping does) replays the epoch
    sampler.set_epoch(3)
    assert list(sampler) != first


def test_ddp_ranks_take_slices_of_one_global_batch():
    index = make_index(make_set(n=120, drop=True))
    world = 3
    samplers = [
        HybridBatchSampler(range(index.num_rows), index, 4, seed=9, world_size=world, rank=r) for r in range(world)
    ]
    reference = HybridBatchSampler(range(index.num_rows), index, 4 * world, seed=9, world_size=1, rank=0)
    global_plans = plans(reference)
    per_rank = [list(s) for s in samplers]
    assert all(len(batches) == len(global_plans) for batches in per_rank)
    for step, plan in enumerate(global_plans):
        slices = [per_rank[r][step] for r in range(world)]
        assert [row for part in slices for row in part] == plan.rows
        check_batch(index, plan.rows)  # uniqueness holds across the whole global batch
        kinds = {index.describe(s)["kind"] for s in slices}
        assert len(kinds) == 1


def test_language_sampling_options():
    big = make_set("big", n=200, langs=("en", "de"))
    small = make_set("small", n=40, langs=("sw",))
    index = make_index(big, small, langs=("en", "de", "sw"))
    counts = {}
    for law in ("uniform", "proportional", "temperature"):
        sampler = MonoBatchSampler(
            range(index.num_rows), index, 8, seed=0, language_sampling=law, language_temperature=3.0, steps_per_epoch=10
        )
        counts[law] = sampler.lang_probs
    np.testing.assert_allclose(counts["uniform"], [1 / 3] * 3)
    np.testing.assert_allclose(counts["proportional"], np.array([200, 200, 40]) / 440)
    smoothed = np.array([200, 200, 40]) ** (1 / 3)
    np.testing.assert_allclose(counts["temperature"], smoothed / smoothed.sum())


def test_too_little_data_for_a_batch_is_a_clear_error():
    index = make_index(make_set(n=10))
    with pytest.raises(DataError, match="lower batch_size"):
        MonoBatchSampler(range(index.num_rows), index, 16)
    with pytest.raises(DataError, match="X-Y batches"):
        XYBatchSampler(range(index.num_rows), index, 16)


def test_factory_builds_train_and_validation_samplers():
    from datasets import Dataset

    index = make_index(make_set())
    factory = SamplerFactory(index, "hybrid", validation_batches=[[0, 1, 2, 3]], alpha=0.5)
    train = factory(Dataset.from_dict({"row": [0, 1]}), batch_size=4, seed=3)
    assert isinstance(train, HybridBatchSampler) and train.seed == 3
    val = factory(Dataset.from_dict({"val_row": [0, 1]}), batch_size=4)
    assert isinstance(val, FixedBatchSampler) and list(val) == [[0, 1, 2, 3]]
    import pickle

    assert "SamplerFactory" in pickle.loads(pickle.dumps(factory))  # checkpoints pickle a short description
