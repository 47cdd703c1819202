from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from polyret.report.significance import (
    Arm,
    Margin,
    PairedComparison,
    PairedSample,
    Status,
    Verdict,
    adjust,
    adjust_by_family,
    benjamini_hochberg,
    bootstrap_ci,
    clustered_comparison,
    holm,
    non_inferior,
    paired_comparison,
    sign_flip_test,
    verdict,
)


def test_sign_flip_hand_computed():
    # d = (1, 2, 3): the 8 sign patterns give means 2, 4/3, 2/3, 0, 0, -2/3, -4/3, -2.
    # Observed 2 is reached by 1 of 8 patterns: P(T >= 2) = 1/8, P(T <= 2) = 1, so p = 2 * 1/8.
    p, exact = sign_flip_test([1.0, 2.0, 3.0])
    assert exact and p == pytest.approx(0.25)
    # d = (1, -1, 2, 0.5): mean 0.625; patterns with mean >= 0.625: +(1,-1,2,.5)... sums >= 2.5 are
    # (1,1,2,.5)=4.5, (1,1,2,-.5)=3.5, (-1,1,2,.5)=2.5, (1,-1,2,.5)=2.5 -> 4 of 16, so p = 2 * 4/16.
    p, exact = sign_flip_test([1.0, -1.0, 2.0, 0.5])
    assert exact and p == pytest.approx(0.5)
    # no difference at all: p = 1
    assert sign_flip_test([0.0, 0.0, 0.0])[0] == 1.0


def _scipy_paired_p(a: np.ndarray, b: np.ndarray, n_resamples: float, seed: int = 0) -> float:
    result = stats.permutation_test(
        (a, b),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        vectorized=True,
        permutation_type="samples",
        n_resamples=n_resamples,
        alternative="two-sided",
        random_state=seed,
    )
    return float(result.pvalue)


def test_sign_flip_matches_scipy_exactly_when_exhaustive():
    rng = np.random.default_rng(3)
    for n in (5, 9, 12):
        a, b = rng.normal(0.3, 1, n), rng.normal(0, 1, n)
        p, exact = sign_flip_test(a - b)
        assert exact
        assert p == pytest.approx(_scipy_paired_p(a, b, np.inf), abs=1e-12)


def test_sign_flip_agrees_with_scipy_on_random_resamples():
    rng = np.random.default_rng(7)
    a = (rng.random(300) < 0.62).astype(float)  # per-query hits of two systems, a slightly better
    b = (rng.random(300) < 0.55).astype(float)
    ours, exact = sign_flip_test(a - b, n_resamples=20_000, seed=1)
    theirs = _scipy_paired_p(a, b, 20_000, seed=2)
    assert not exact
    assert 0.001 < theirs < 0.5
    assert ours == pytest.approx(theirs, abs=0.015)  # two Monte Carlo estimates of one p (se ~ 0.002)


def test_sign_flip_is_seeded():
    d = np.random.default_rng(0).normal(0.1, 1, 200)
    assert sign_flip_test(d, seed=5) == sign_flip_test(d, seed=5)


def test_bootstrap_ci_matches_scipy_percentile():
    rng = np.random.default_rng(11)
    diff = rng.normal(0.05, 0.3, 400)
    low, high = bootstrap_ci(diff, n_resamples=20_000, seed=0)
    reference = stats.bootstrap(
        (diff,), np.mean, n_resamples=20_000, method="percentile", confidence_level=0.95, random_state=0
    ).confidence_interval
    width = reference.high - reference.low
    assert low == pytest.approx(reference.low, abs=0.05 * width)
    assert high == pytest.approx(reference.high, abs=0.05 * width)
    assert low < diff.mean() < high


def test_bootstrap_ci_hand_computed_degenerate_cases():
    assert bootstrap_ci([0.5, 0.5, 0.5]) == pytest.approx((0.5, 0.5))
    low, high = bootstrap_ci([0.0, 1.0], n_resamples=4000, confidence=0.5)
    # resampled means of two values are 0 (1/4), 0.5 (1/2) or 1 (1/4): the central 50% interval is [0.5, 0.5]
    assert (low, high) == pytest.approx((0.5, 0.5))


def test_holm_and_bh_hand_computed():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted 0.005*4/1=0.02, 0.01*4/2=0.02, 0.03*4/3=0.04, 0.04*4/4=0.04
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert holm([]) == [] and benjamini_hochberg([]) == []
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_bh_matches_scipy():
    p = np.random.default_rng(1).random(25) ** 3
    assert benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p, method="bh").tolist())


def test_paired_comparison_and_verdicts():
    rng = np.random.default_rng(5)
    base = rng.random(500)
    better = paired_comparison(base + 0.05 + rng.normal(0, 0.05, 500), base, n_resamples=2000)
    assert better.n == 500 and better.diff == pytest.approx(better.mean_a - better.mean_b)
    assert better.ci_low < better.diff < better.ci_high and better.p_value < 0.01
    assert verdict(better) == "better"
    assert verdict(better, higher_is_better=False) == "worse"  # e.g. rank distance
    tied = paired_comparison(base + rng.normal(0, 0.05, 500), base, n_resamples=2000)
    if tied.p_value >= 0.05:
        assert verdict(tied) == "no significant difference"
    with pytest.raises(ValueError, match="differ in length"):
        paired_comparison([1, 2], [1])


def test_adjusted_p_decides_the_verdict():
    raw = PairedComparison(n=50, mean_a=0.6, mean_b=0.5, diff=0.1, ci_low=0.01, ci_high=0.2, p_value=0.02, exact=False)
    assert verdict(raw) == "better"
    family = adjust([raw, raw, raw], "holm")  # 0.02 * 3 = 0.06 after Holm
    assert family[0].p_adjusted == pytest.approx(0.06)
    assert verdict(family[0]) == "no significant difference"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=40), st.integers(0, 3))
def test_never_better_without_p_below_005(values, seed):
    comparison = adjust([paired_comparison(np.asarray(values), np.zeros(len(values)), n_resamples=300, seed=seed)])[0]
    word = verdict(comparison)
    if word != "no significant difference":
        assert comparison.p_adjusted is not None and comparison.p_adjusted < 0.05
    assert 0.0 < comparison.p_value <= 1.0


# --------------------------------------------------------------------------- items, seeds, groups (PROTOCOLS §7)


def _sample(a, b, items, strata=None, *, trained=(False, False)) -> PairedSample:
    return PairedSample(Arm(np.atleast_2d(a), trained[0]), Arm(np.atleast_2d(b), trained[1]), np.asarray(items), strata)


def _item_means(values: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Item means in order of first appearance, the slow obvious way."""
    labels = list(dict.fromkeys(items.tolist()))
    return np.asarray([values[items == label].mean() for label in labels])


def _same(first: PairedComparison, second: PairedComparison) -> None:
    assert first.diff == pytest.approx(second.diff, abs=1e-12)
    assert (first.ci_low, first.ci_high) == pytest.approx((second.ci_low, second.ci_high), abs=1e-12)
    assert first.p_value == pytest.approx(second.p_value, abs=1e-12) and first.exact == second.exact


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 30),
    st.lists(st.integers(1, 4), min_size=30, max_size=30),
    st.integers(1, 3),
    st.booleans(),
    st.integers(0, 2**16),
)
def test_duplicating_queries_leaves_every_p_and_ci_unchanged(n_items, copies, n_seeds, macro, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.2, 1, (n_seeds, n_items)), rng.normal(0, 1, (1, n_items))
    items = np.asarray([f"i{i}" for i in range(n_items)])
    strata = np.asarray([f"l{i % 3}" for i in range(n_items)])
    repeat = np.asarray(copies[:n_items])  # each query k_i times, right after itself: identical values, one item
    once = _sample(a, b, items, strata, trained=(True, False))
    duplicated = _sample(
        np.repeat(a, repeat, axis=1), np.repeat(b, repeat, axis=1), np.repeat(items, repeat), np.repeat(strata, repeat)
    )
    first = clustered_comparison(once, macro=macro, n_resamples=500, seed=seed)
    second = clustered_comparison(duplicated, macro=macro, n_resamples=500, seed=seed)
    _same(first, second)
    assert second.n == repeat.sum() and second.n_items == first.n_items == n_items


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=40), st.integers(0, 5))
def test_one_query_per_item_is_the_per_query_test(values, seed):
    a = np.asarray(values)
    b = np.random.default_rng(seed).normal(0, 0.5, a.size)
    labels = np.asarray([f"question-{i * 7919 % 1000}" for i in range(a.size)])  # any distinct labels
    per_query = paired_comparison(a, b, n_resamples=400, seed=seed)
    clustered = clustered_comparison(_sample(a, b, labels), n_resamples=400, seed=seed)
    assert clustered == per_query  # every field, bit for bit


def test_item_level_sign_flip_matches_scipy_on_item_means_exactly():
    rng = np.random.default_rng(4)
    items = np.repeat(np.arange(11), rng.integers(1, 5, 11))  # 11 items of 1-4 queries: exact (2^11 patterns)
    a, b = rng.normal(0.3, 1, items.size), rng.normal(0, 1, items.size)
    result = clustered_comparison(_sample(a, b, items))
    assert result.exact and result.n_items == 11 and result.n == items.size
    assert result.p_value == pytest.approx(_scipy_paired_p(_item_means(a, items), _item_means(b, items), np.inf))
    assert result.diff == pytest.approx((_item_means(a, items) - _item_means(b, items)).mean())


def test_item_level_tests_agree_with_scipy_on_item_means():
    rng = np.random.default_rng(8)
    items = np.repeat(np.arange(300), 11)  # 300 items x 11 translations, correlated within the item
    shared, advantage = np.repeat(rng.normal(0, 1, 300), 11), np.repeat(rng.normal(0.15, 0.6, 300), 11)
    a = (shared + advantage + rng.normal(0, 0.3, items.size) > 0).astype(float)  # A's edge differs by item
    b = (shared + rng.normal(0, 0.3, items.size) > 0).astype(float)
    result = clustered_comparison(_sample(a, b, items), n_resamples=20_000, seed=3)
    item_a, item_b = _item_means(a, items), _item_means(b, items)
    assert result.p_value == pytest.approx(_scipy_paired_p(item_a, item_b, 20_000, seed=5), abs=0.015)
    reference = stats.bootstrap(
        (item_a - item_b,), np.mean, n_resamples=20_000, method="percentile", random_state=0
    ).confidence_interval
    width = reference.high - reference.low
    assert result.ci_low == pytest.approx(reference.low, abs=0.05 * width)
    assert result.ci_high == pytest.approx(reference.high, abs=0.05 * width)
    # the per-query test takes the 3,300 queries as independent, though differences correlate within items
    per_query = paired_comparison(a, b, n_resamples=20_000, seed=3)
    assert per_query.ci_high - per_query.ci_low < 0.7 * (result.ci_high - result.ci_low)


def test_low_resource_group_test_hand_computed():
    # language A: items with d = (1, -3), language B: one item with d = 2. Each language weighs 1/2:
    # macro = (mean(1, -3) + 2) / 2 = 0.5 (the pooled mean would be 0). Flipping item signs within their language,
    # T = (s1 - 3 s2) / 4 + s3 takes 0.5, 0, 2, 1.5, -1.5, -2, 0, -0.5: P(T >= 0.5) = 3/8, P(T <= 0.5) = 6/8,
    # so p = 2 * 3/8 = 0.75.
    a, b = np.asarray([1.0, -3.0, 2.0]), np.zeros(3)
    sample = _sample(a, b, ["a1", "a2", "b1"], np.asarray(["A", "A", "B"]))
    result = clustered_comparison(sample, macro=True, confidence=0.2, n_resamples=4000)
    assert result.diff == pytest.approx(0.5) and result.n_strata == 2
    assert result.exact and result.p_value == pytest.approx(0.75)
    # items resampled within language: A's mean is 1 (1/4), -1 (1/2) or -3 (1/4), B's always 2, so the macro mean is
    # 1.5, 0.5 or -0.5 with probabilities 1/4, 1/2, 1/4: the central 20% interval is [0.5, 0.5], the 90% one
    # [-0.5, 1.5].
    assert (result.ci_low, result.ci_high) == pytest.approx((0.5, 0.5))
    wide = clustered_comparison(sample, macro=True, confidence=0.9, n_resamples=4000)
    assert (wide.ci_low, wide.ci_high) == pytest.approx((-0.5, 1.5))
    pooled = clustered_comparison(sample)
    assert pooled.diff == pytest.approx(0.0) and pooled.p_value == 1.0


def test_group_test_needs_items_nested_in_languages():
    sample = _sample([1.0, 2.0], [0.0, 0.0], ["q1", "q1"], np.asarray(["de", "en"]))  # one item in two languages
    with pytest.raises(ValueError, match="spans several strata"):
        clustered_comparison(sample, macro=True)
    with pytest.raises(ValueError, match="needs the stratum"):
        clustered_comparison(_sample([1.0], [0.0], ["q1"]), macro=True)


@settings(max_examples=25, deadline=None)
@given(st.integers(5, 60), st.floats(5, 20), st.integers(0, 2**16))
def test_seed_resampling_widens_the_ci_when_seeds_disagree(n_items, offset, seed):
    rng = np.random.default_rng(seed)
    diff = rng.uniform(-1, 1, n_items)  # one-level CI at most 2 wide
    agreeing = np.tile(diff, (3, 1))
    disagreeing = agreeing + np.asarray([[-offset], [0.0], [offset]])  # same seed mean, seeds `offset` apart
    zero = np.zeros((1, n_items))
    one_level = clustered_comparison(_sample(diff, zero, np.arange(n_items)), n_resamples=1000, seed=seed)
    same = clustered_comparison(_sample(agreeing, zero, np.arange(n_items), trained=(True, False)), n_resamples=1000)
    spread = clustered_comparison(
        _sample(disagreeing, zero, np.arange(n_items), trained=(True, False)), n_resamples=1000
    )
    reference = clustered_comparison(_sample(diff, zero, np.arange(n_items)), n_resamples=1000)
    _same(same, reference)  # seeds that agree leave CI and p unchanged
    assert same.seed_spread == pytest.approx(0.0, abs=1e-12)
    assert spread.p_value == pytest.approx(reference.p_value)  # p works on the seed means, which did not move
    assert spread.ci_high - spread.ci_low > (reference.ci_high - reference.ci_low) + offset
    assert spread.seed_spread == pytest.approx(offset)  # std of the per-seed means (-offset, 0, offset) + mean
    assert one_level.status is Status.TESTED


def test_seed_counts_status_and_spread():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0.5, 1, (2, 30)), rng.normal(0, 1, (1, 30))
    two_seeds = clustered_comparison(_sample(a, b, np.arange(30), trained=(True, False)), n_resamples=500)
    assert two_seeds.status is Status.SINGLE_SEED and two_seeds.seeds == (2, 1)  # 3 needed per trained arm
    assert verdict(two_seeds) is Verdict.NOT_TESTED
    assert two_seeds.seed_spread == pytest.approx(float(np.std(a.mean(axis=1), ddof=1)))
    one_seed = clustered_comparison(_sample(a[:1], b, np.arange(30), trained=(True, True)), n_resamples=500)
    assert one_seed.status is Status.SINGLE_SEED and one_seed.seed_spread is None  # seed variance unknown
    # the untouched backbone needs one run: three seeds against it are enough
    three = np.vstack([a, a[:1] + 0.1])
    tested = clustered_comparison(_sample(three, b, np.arange(30), trained=(True, False)), n_resamples=500)
    assert tested.status is Status.TESTED and tested.seeds == (3, 1)
    # both arms seeded: the spread adds the two seed variances
    both = clustered_comparison(_sample(three, three - 0.2, np.arange(30), trained=(True, True)), n_resamples=500)
    assert both.seed_spread == pytest.approx(np.sqrt(2) * np.std(three.mean(axis=1), ddof=1))


def _comparison(diff: float, low: float, high: float, p: float, *, seeds: int = 1, mean_b: float = 50.0):
    return PairedComparison(
        n=100,
        mean_a=mean_b + diff,
        mean_b=mean_b,
        diff=diff,
        ci_low=low,
        ci_high=high,
        p_value=p,
        exact=False,
        seed_means_a=(mean_b + diff,) * seeds,
        seed_means_b=(mean_b,),
    )


def test_equivalence_margins_and_verdict_order():
    points, relative = Margin(1.0), Margin(0.05, relative=True)
    assert non_inferior(_comparison(0.2, -0.9, 1.3, 0.4), points)
    assert not non_inferior(_comparison(0.2, -1.1, 1.3, 0.4), points)
    # rank distance (lower is better), reference 400: the CI's upper bound must stay below +20
    assert non_inferior(_comparison(3.0, -10.0, 19.5, 0.4, mean_b=400.0), relative, higher_is_better=False)
    assert not non_inferior(_comparison(3.0, -10.0, 20.5, 0.4, mean_b=400.0), relative, higher_is_better=False)
    assert verdict(_comparison(0.2, -0.9, 1.3, 0.4), margin=points) is Verdict.MATCHES
    assert verdict(_comparison(0.2, -0.9, 1.3, 0.4)) is Verdict.NO_DIFFERENCE  # no margin, no "matches"
    assert verdict(_comparison(-0.4, -0.6, -0.2, 0.001), margin=points) is Verdict.MATCHES  # a real loss < margin
    assert verdict(_comparison(-2.0, -3.0, -1.2, 0.001), margin=points) is Verdict.WORSE
    assert verdict(_comparison(2.0, 1.0, 3.0, 0.001), margin=points) is Verdict.BETTER
    assert verdict(_comparison(0.5, -2.0, 3.0, 0.4), margin=points) is Verdict.NO_DIFFERENCE
    assert str(Verdict.NO_DIFFERENCE) == "no significant difference" and f"{Verdict.MATCHES}" == "matches"


def test_with_seeds_better_needs_the_ci_on_one_side_of_zero():
    # p holds the seed means fixed; the two-level CI carries seed variance and decides when they disagree
    assert verdict(_comparison(2.0, -0.5, 4.5, 0.01, seeds=3)) is Verdict.NO_DIFFERENCE
    assert verdict(_comparison(2.0, 0.5, 4.5, 0.01, seeds=3)) is Verdict.BETTER
    assert verdict(_comparison(2.0, -0.5, 4.5, 0.01, seeds=1)) is Verdict.BETTER  # one run per arm: p decides


def test_families_are_corrected_apart_and_untested_comparisons_stay_out():
    raw = [_comparison(1.0, 0.1, 2.0, p) for p in (0.01, 0.04, 0.03, 0.02)]
    untested = replace(raw[3], status=Status.SINGLE_SEED)
    adjusted = adjust_by_family([raw[0], raw[1], raw[2], untested], ["xquad-r", "xquad-r", "tatoeba", "tatoeba"])
    # xquad-r: Holm of (0.01, 0.04) = (0.02, 0.04); tatoeba: 0.03 alone (the single-seed one is not in the family)
    assert [c.p_adjusted for c in adjusted] == pytest.approx([0.02, 0.04, 0.03, None])
    assert adjust([raw[0], untested])[1].p_adjusted is None and adjust([raw[0], untested])[0].p_adjusted == 0.01
    with pytest.raises(ValueError, match="family keys"):
        adjust_by_family(raw, ["one"])
