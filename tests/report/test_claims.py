from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from helpers.synthetic_study import STUDY_YAML, CallLog, FakeEvaluator, FakeTrainer, write_study_config
from polyret.eval.results import MainScore, TaskResult
from polyret.report.claims import (
    CLAIMS,
    MethodFacts,
    NotTested,
    Role,
    Support,
    evaluate_claims,
    method_facts,
    noninferiority_margin,
)
from polyret.report.significance import Margin, Verdict, holm
from polyret.report.tables import RunRecord, Study, load_study, paired_sample
from polyret.study.runner import run_study
from polyret.train.config import ContrastiveConfig

QUESTIONS = 40  # LAReQA-like items: each question asked in every language
LAREQA_LANGS = ("de", "en", "es")
TATOEBA_LANGS = ("sw", "kk", "fr")  # sw and kk are low-resource (PROTOCOLS §4)
LINES = 60


def _lareqa(effect: dict[str, float], seed: int) -> tuple[TaskResult, dict[str, np.ndarray]]:
    """Per-query values: an item (question) level, the method's effect, and seed noise (fractions; ranks as is)."""
    items = np.random.default_rng(1).uniform(0.2, 0.6, QUESTIONS)
    arrays: dict[str, np.ndarray] = {}
    languages: dict[str, dict[str, float]] = {}
    for index, lang in enumerate(LAREQA_LANGS):
        noise = np.random.default_rng((seed, index)).normal(0, 0.01, QUESTIONS)
        row: dict[str, float] = {}
        for metric in ("mul.map", "mono.map", "cross.map"):
            values = np.clip(items + effect.get(metric, 0.0) + noise, 0, 1)
            arrays[f"{lang}/{metric}"], row[metric] = values, 100 * float(values.mean())
        ranks = 400 * (1 - items) - 100 * effect.get("mul.rank_distance", 0.0) + 100 * noise
        arrays[f"{lang}/mul.rank_distance"], row["mul.rank_distance"] = ranks, float(ranks.mean())
        ids = np.asarray([f"q{i}" for i in range(QUESTIONS)])
        arrays[f"{lang}/query_ids"], arrays[f"{lang}/item_ids"] = ids, ids  # translations share the item
        languages[lang] = row
    return _result("xquad-r", "mul.map", languages), arrays


def _tatoeba(accuracy: dict[str, float], seed: int) -> tuple[TaskResult, dict[str, np.ndarray]]:
    """0/1 hits: line i is found when its (language-fixed) difficulty is below the method's accuracy (+ seed)."""
    arrays: dict[str, np.ndarray] = {}
    languages: dict[str, dict[str, float]] = {}
    for index, lang in enumerate(TATOEBA_LANGS):
        difficulty = np.random.default_rng(100 + index).random(LINES)
        level = accuracy.get(lang, accuracy["*"]) + 0.02 * (seed - 1)
        row: dict[str, float] = {}
        for direction in ("xx2en.accuracy", "en2xx.accuracy"):
            hits = (difficulty < level).astype(np.uint8)
            arrays[f"{lang}/{direction}"], row[direction] = hits, 100 * float(hits.mean())
        arrays[f"{lang}/query_ids"] = np.arange(LINES)
        arrays[f"{lang}/item_ids"] = np.asarray([f"{lang}/{i}" for i in range(LINES)])
        languages[lang] = row
    return _result("tatoeba", "xx2en.accuracy", languages), arrays


def _result(task: str, main: str, languages: dict[str, dict[str, float]]) -> TaskResult:
    value = float(np.mean([row[main] for row in languages.values()]))
    return TaskResult(task=task, main_score=MainScore(metric=main, value=value), languages=languages)


# method -> (LAReQA effects, Tatoeba accuracy by language); hybrid beats mono and X-Y on Mul. mAP, matches X-X-mono on
# Mo. mAP, has the lower rank distance; CRISS-style forgets kk.
ARMS: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    "zero-shot": ({}, {"*": 0.6}),
    "mono": ({"mul.map": 0.0, "mono.map": 0.1, "cross.map": 0.0}, {"*": 0.6}),
    "xy": ({"mul.map": 0.02, "mono.map": 0.05, "cross.map": 0.1}, {"*": 0.6}),
    "hybrid": ({"mul.map": 0.08, "mono.map": 0.1, "cross.map": 0.1, "mul.rank_distance": 0.5}, {"*": 0.8}),
    "criss-contrastive": ({}, {"*": 0.7, "kk": 0.2}),
}


def make_study(methods: dict[str, str], seeds: int = 3, root: Path = Path("/nonexistent")) -> Study:
    """An in-memory study: label -> method, ``seeds`` runs each (zero-shot: one), results and per-query arrays."""
    runs = []
    for label, method in methods.items():
        effects, accuracy = ARMS[method]
        for seed in range(1 if method == "zero-shot" else seeds):
            (lareqa, lareqa_arrays), (tatoeba, tatoeba_arrays) = _lareqa(effects, seed), _tatoeba(accuracy, seed)
            record = RunRecord(
                name=f"tiny__{label}__s{seed}",
                backbone="tiny",
                label=label,
                method=method,
                seed=seed,
                alpha=None,
                model="tiny",
                run_dir=root,
                done=True,
                results={"xquad-r": lareqa, "tatoeba": tatoeba},
            )
            record._per_query.update({"xquad-r": lareqa_arrays, "tatoeba": tatoeba_arrays})
            runs.append(record)
    return Study(study_dir=root, meta={"name": "claims"}, runs=runs)


FULL = {"zero-shot": "zero-shot", "mono": "mono", "xy": "xy", "hybrid-a0.5": "hybrid", "criss-c": "criss-contrastive"}


@pytest.fixture(scope="module")
def full_table():
    return evaluate_claims(make_study(FULL), n_resamples=1000)


def _row(table, claim: str, metric: str, reference: str | None = None, arm: str | None = None):
    rows = [
        row
        for row in table.rows_of(claim)
        if row.metric == metric
        and (reference is None or (row.reference and row.reference[1] == reference))
        and (arm is None or (row.arm and row.arm[1] == arm))
    ]
    assert len(rows) == 1, rows
    return rows[0]


def test_roles_come_from_the_method_field():
    assert method_facts("hybrid").role is Role.HYBRID and method_facts("criss").role is Role.CRISS
    assert method_facts("zero-shot").trained is False and method_facts("mono").trained is True
    assert method_facts("something-new").role is None and method_facts("something-new").trained
    # the label (hybrid-a0.5, criss-c) plays no part: the row's arm is found through its method
    table = evaluate_claims(make_study(FULL), claims=CLAIMS[:1], n_resamples=200)
    assert {row.arm for row in table.rows} == {("tiny", "hybrid-a0.5")}


def test_roles_follow_the_method_registry_facts():
    from polyret.train.methods import Method, register_method, unregister_method

    # a method registered later gets its role from its facts, not from its name
    register_method(Method("miner-x", "test", ContrastiveConfig, "x:y", mines_text=True))
    register_method(Method("sweeper-x", "test", ContrastiveConfig, "x:y", sweeps_alpha=True))
    register_method(Method("mono-like-x", "test", ContrastiveConfig, "x:y", alpha_equivalent=1.0))
    register_method(Method("frozen-x", "test"))
    try:
        assert method_facts("miner-x").role is Role.CRISS
        assert method_facts("sweeper-x").role is Role.HYBRID
        assert method_facts("mono-like-x").role is Role.MONO
        assert method_facts("frozen-x") == MethodFacts(Role.BACKBONE, trained=False)
        assert method_facts("tli").role is None and method_facts("tli").trained
    finally:
        for name in ("miner-x", "sweeper-x", "mono-like-x", "frozen-x"):
            unregister_method(name)


def test_full_study_verdicts(full_table):
    assert [spec.id for spec in full_table.specs] == ["C1", "C2", "C3", "C4", "C5"]
    c1_mono = _row(full_table, "C1", "mul.map", "mono")
    assert c1_mono.task == "xquad-r" and c1_mono.verdict is Verdict.BETTER and c1_mono.supports
    comparison = c1_mono.comparison
    assert comparison is not None and comparison.seeds == (3, 3) and comparison.seed_spread is not None
    assert comparison.n_items == QUESTIONS and comparison.n == QUESTIONS * len(LAREQA_LANGS)  # items, not queries
    assert comparison.diff == pytest.approx(8.0, abs=0.5)  # per-query fractions on the result's x100 scale
    assert _row(full_table, "C2", "mul.rank_distance").verdict is Verdict.BETTER  # lower is better
    c3_mono = _row(full_table, "C3", "mono.map", "mono")
    assert c3_mono.verdict is Verdict.MATCHES and c3_mono.supports and "non-inferiority margin" in c3_mono.reason
    assert full_table.support["C1"] is Support.SUPPORTED and full_table.support["C3"] is Support.SUPPORTED
    # C4: the low-resource group only (sw, kk), each language weighted equally
    c4 = _row(full_table, "C4", "xx2en.accuracy")
    assert c4.scope.startswith("low-resource group (2 languages") and c4.comparison.n_strata == 2
    assert c4.supports is None  # a question, not a claim with a direction
    # C5: CRISS-style forgets kk, hybrid does not
    criss = _row(full_table, "C5", "xx2en.accuracy", arm="criss-c")
    assert criss.verdict is Verdict.WORSE and criss.supports is False and "kk" in criss.reason and "kk" in criss.scope
    assert _row(full_table, "C5", "xx2en.accuracy", arm="hybrid-a0.5").supports is True
    assert full_table.support["C5"] is Support.REFUTED
    # UDHR is not in this study: its C4/C5 tests say so
    udhr = _row(full_table, "C4", "xx2en.p@1")
    assert udhr.verdict is Verdict.NOT_TESTED and udhr.not_tested is NotTested.NO_TASK
    assert udhr.verdict_text == "not tested: no task in this study reports xx2en.p@1"
    assert full_table.support["C4"] is Support.UNDECIDED  # half of its comparisons cannot be made here


def test_a_question_is_answered_when_every_comparison_is_made():
    tatoeba_only = replace(CLAIMS[3], tests=CLAIMS[3].tests[:2])
    table = evaluate_claims(make_study(FULL), claims=[tatoeba_only], n_resamples=200)
    assert [row.verdict for row in table.rows] == [Verdict.BETTER, Verdict.BETTER]
    assert table.support == {"C4": Support.ANSWERED}


def test_holm_within_each_task_family(full_table):
    # every C1-C4 comparison on xquad-r is one family: their corrected p's are Holm over their raw p's
    rows = [row for row in full_table.rows if row.task == "xquad-r" and row.comparison is not None]
    assert len(rows) == 5  # C1 x2, C2, C3 x2
    raw = [row.comparison.p_value for row in rows]
    assert [row.comparison.p_adjusted for row in rows] == pytest.approx(holm(raw))
    assert full_table.correction == "holm"


def test_missing_arms_and_single_seeds_are_not_tested():
    table = evaluate_claims(make_study({"zero-shot": "zero-shot", "mono": "mono", "hybrid": "hybrid"}), n_resamples=200)
    xy = next(row for row in table.rows_of("C1") if row.reference is None)  # hybrid vs X-Y: no X-Y arm
    assert xy.verdict is Verdict.NOT_TESTED and xy.not_tested is NotTested.MISSING_ARM
    assert xy.verdict_text == "not tested: X-Y not in this study" and xy.comparison is None
    assert all(row.not_tested is NotTested.MISSING_ARM for row in table.rows_of("C4"))
    assert table.rows_of("C4")[0].verdict_text == "not tested: CRISS-style not in this study"
    assert table.support["C4"] is Support.NOT_TESTED and table.support["C1"] is Support.UNDECIDED

    single = evaluate_claims(make_study({"zero-shot": "zero-shot", "mono": "mono", "hybrid": "hybrid"}, seeds=1))
    row = _row(single, "C1", "mul.map", "mono")
    assert row.not_tested is NotTested.SINGLE_SEED and row.verdict is Verdict.NOT_TESTED
    assert row.verdict_text == "single seed: not tested"
    assert row.comparison is not None and row.comparison.p_adjusted is None  # numbers shown, kept out of Holm
    assert single.support["C1"] is Support.NOT_TESTED


def test_claims_json_is_plain_data(full_table):
    payload = json.loads(json.dumps(full_table.to_json()))
    assert [claim["id"] for claim in payload["claims"]] == ["C1", "C2", "C3", "C4", "C5"]
    assert payload["claims"][0]["support"] == "supported"
    row = payload["rows"][0]
    assert row["claim"] == "C1" and row["arm"] == "tiny/hybrid-a0.5" and row["verdict"] == "better"
    assert len(row["ci"]) == 2 and row["seeds"] == [3, 3] and row["items"] == QUESTIONS


def test_noninferiority_margins_follow_protocols():
    assert noninferiority_margin(lower_is_better=False) == Margin(1.0)
    assert noninferiority_margin(lower_is_better=True) == Margin(0.05, relative=True)


def test_paired_sample_aligns_seeds_by_query_and_reads_items():
    study = make_study({"zero-shot": "zero-shot", "hybrid": "hybrid"})
    hybrid = next(r for r in study.runs if r.label == "hybrid" and r.seed == 1)
    arrays = hybrid._per_query["tatoeba"]
    order = np.arange(LINES)[::-1]  # one seed stores its queries in another order
    for key in [k for k in arrays if k.startswith("sw/")]:
        arrays[key] = arrays[key][order]
    sample = paired_sample(study, ("tiny", "hybrid"), ("tiny", "zero-shot"), "tatoeba", "xx2en.accuracy", ["sw"])
    assert sample is not None and sample.a.values.shape == (3, LINES) and sample.b.values.shape == (1, LINES)
    assert sample.items.tolist() == [f"sw/{i}" for i in range(LINES)] and set(sample.strata) == {"sw"}
    expected = np.stack([_tatoeba(ARMS["hybrid"][1], seed)[1]["sw/xx2en.accuracy"] for seed in range(3)]) * 100.0
    np.testing.assert_array_equal(sample.a.values, expected)
    assert sample.a.trained and sample.b.trained  # the caller says which arms are trained
    # a file without item ids: one item per (language, query)
    for run in study.runs:
        for lang in LAREQA_LANGS:
            run._per_query["xquad-r"].pop(f"{lang}/item_ids")
    old = paired_sample(study, ("tiny", "hybrid"), ("tiny", "zero-shot"), "xquad-r", "mul.map")
    assert old is not None and len(set(old.items.tolist())) == QUESTIONS * len(LAREQA_LANGS)


def test_claims_on_a_study_read_from_disk(tmp_path: Path):
    config = write_study_config(tmp_path / "study.yaml", text=STUDY_YAML.replace("seeds: [0, 1]", "seeds: [0, 1, 2]"))
    calls = CallLog(tmp_path / "calls.jsonl")
    status = run_study(
        config, tmp_path / "study", trainer=FakeTrainer(calls), evaluator=FakeEvaluator(calls), show_progress=False
    )
    assert status.ok
    table = evaluate_claims(load_study(tmp_path / "study"), n_resamples=500)
    c1 = [row for row in table.rows_of("C1") if row.reference == ("tiny", "mono")]
    assert [row.arm for row in c1] == [("tiny", "hybrid-a0.25"), ("tiny", "hybrid-a0.5")]  # one row per hybrid arm
    assert all(row.comparison.n_items == 50 and row.comparison.seeds == (3, 3) for row in c1)  # 50 questions x 11
    assert all(row.verdict is Verdict.BETTER for row in c1)
    assert table.rows_of("C4")[0].verdict_text == "not tested: CRISS-style not in this study"


def test_a_claim_across_backbones_gets_no_verdict():
    """PROTOCOLS §6.4: C4 pairs CRISS-style with hybrid on any backbone, but a verdict needs one backbone."""
    study = make_study(FULL)
    for run in study.runs:
        if run.method == "criss-contrastive":
            run.backbone, run.name = "mbart", run.name.replace("tiny__", "mbart__")
    table = evaluate_claims(Study(study_dir=study.study_dir, meta=study.meta, runs=study.runs), n_resamples=200)
    rows = [row for row in table.rows_of("C4") if row.task == "tatoeba"]  # UDHR: not in this study
    assert len(rows) == 2 and all(row.arm[0] == "tiny" and row.reference[0] == "mbart" for row in rows)
    assert all(row.not_tested is NotTested.NOT_COMPARABLE and row.comparison is None for row in rows)
    assert rows[0].verdict_text == "not tested: not comparable: backbone"
    assert table.support["C4"] is Support.NOT_TESTED
