from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from polyret.report.significance import (
    PairedComparison,
    adjust,
    benjamini_hochberg,
    bootstrap_ci,
    holm,
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
