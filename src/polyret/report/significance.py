"""Paired significance tests on per-query scores, and multiple-comparison corrections.

Two systems scored on the same queries give paired values ``a_i`` and ``b_i``; everything here works on
the differences ``d_i = a_i − b_i``:

- :func:`bootstrap_ci`: percentile bootstrap confidence interval of ``mean(d)`` (queries resampled with
  replacement).
- :func:`sign_flip_test`: the paired randomisation test. Under H0 (the two systems are exchangeable per
  query) every ``d_i`` is equally likely to have either sign, so the null distribution of ``mean(d)`` is
  obtained by flipping signs at random (all ``2^n`` patterns when ``n`` is small: the exact test). The
  two-sided p-value follows ``scipy.stats.permutation_test`` (``permutation_type='samples'``):
  ``min(1, 2·min(P(T ≥ t), P(T ≤ t)))``, with ``+1`` in numerator and denominator for random resamples
  (so p is never 0) and none for the exact test.
- :func:`holm` and :func:`benjamini_hochberg` adjust a family of p-values.
- :func:`verdict` turns a difference into words, and never says "better" unless the adjusted p < 0.05.

Every random draw comes from ``numpy.random.default_rng(seed)``, so a report is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

ALPHA = 0.05
N_RESAMPLES = 10_000
EXACT_MAX_N = 16  # 2^16 = 65,536 sign patterns: enumerated exactly
_CHUNK_CELLS = 4_000_000  # resamples x queries held in memory at once


@dataclass(frozen=True)
class PairedComparison:
    """A paired comparison of system A against reference B on the same ``n`` queries."""

    n: int
    mean_a: float
    mean_b: float
    diff: float  # mean(a - b)
    ci_low: float
    ci_high: float
    p_value: float
    exact: bool  # the sign-flip test enumerated every pattern
    p_adjusted: float | None = None

    def with_adjusted(self, p_adjusted: float) -> PairedComparison:
        return PairedComparison(
            self.n, self.mean_a, self.mean_b, self.diff, self.ci_low, self.ci_high, self.p_value, self.exact, p_adjusted
        )


def _as_diff(diff: Sequence[float] | np.ndarray) -> np.ndarray:
    values = np.asarray(diff, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("no paired values to test")
    if not np.all(np.isfinite(values)):
        raise ValueError("paired differences must be finite")
    return values


def _chunks(total: int, n: int) -> list[int]:
    size = max(1, _CHUNK_CELLS // max(n, 1))
    return [min(size, total - start) for start in range(0, total, size)]


def bootstrap_ci(
    diff: Sequence[float] | np.ndarray, *, n_resamples: int = N_RESAMPLES, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``diff`` (``scipy.stats.bootstrap(method='percentile')``)."""
    values = _as_diff(diff)
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [
            values[rng.integers(0, values.size, size=(rows, values.size))].mean(axis=1)
            for rows in _chunks(n_resamples, values.size)
        ]
    )
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def sign_flip_null(
    diff: np.ndarray, *, n_resamples: int, seed: int, exact_max_n: int = EXACT_MAX_N
) -> tuple[np.ndarray, bool]:
    """The null distribution of ``mean(diff)`` under random sign flips, and whether it is exact."""
    n = diff.size
    if n <= exact_max_n and 2**n <= max(n_resamples, 2**exact_max_n):
        patterns = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1) * 2 - 1
        return (patterns * diff[None, :]).mean(axis=1), True
    rng = np.random.default_rng(seed)
    null = np.concatenate(
        [
            (rng.choice(np.array([-1.0, 1.0]), size=(rows, n)) * diff[None, :]).mean(axis=1)
            for rows in _chunks(n_resamples, n)
        ]
    )
    return null, False


def sign_flip_test(
    diff: Sequence[float] | np.ndarray, *, n_resamples: int = N_RESAMPLES, seed: int = 0, exact_max_n: int = EXACT_MAX_N
) -> tuple[float, bool]:
    """Two-sided paired randomisation (sign-flip) test of ``mean(diff) = 0``; returns (p, exact)."""
    values = _as_diff(diff)
    observed = values.mean()
    null, exact = sign_flip_null(values, n_resamples=n_resamples, seed=seed, exact_max_n=exact_max_n)
    # Same tolerance as scipy: values within a few ulps of the observed statistic count as ties.
    gamma = abs(np.finfo(np.float64).eps * 100 * observed)
    adjustment = 0 if exact else 1
    greater = ((null >= observed - gamma).sum() + adjustment) / (null.size + adjustment)
    less = ((null <= observed + gamma).sum() + adjustment) / (null.size + adjustment)
    return float(min(1.0, 2.0 * min(greater, less))), exact


def paired_comparison(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Compare per-query values ``a`` against reference ``b`` (same queries, same order)."""
    first, second = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if first.shape != second.shape:
        raise ValueError(f"paired values differ in length: {first.size} vs {second.size}")
    diff = first - second
    low, high = bootstrap_ci(diff, n_resamples=n_resamples, confidence=confidence, seed=seed)
    p_value, exact = sign_flip_test(diff, n_resamples=n_resamples, seed=seed + 1)
    return PairedComparison(
        n=int(diff.size),
        mean_a=float(first.mean()),
        mean_b=float(second.mean()),
        diff=float(diff.mean()),
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        exact=exact,
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values (family-wise error rate), in input order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adjusted_sorted, 1.0)
    return adjusted.tolist()


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg step-up adjusted p-values (false discovery rate), in input order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adjusted_sorted, 1.0)
    return adjusted.tolist()


Correction = Literal["holm", "bh"]
CORRECTIONS = {
    "holm": (holm, "Holm–Bonferroni (family-wise error rate)"),
    "bh": (benjamini_hochberg, "Benjamini–Hochberg (false discovery rate)"),
}


def adjust(comparisons: Sequence[PairedComparison], method: Correction = "holm") -> list[PairedComparison]:
    """The comparisons with ``p_adjusted`` filled in, corrected across the whole sequence."""
    function, _ = CORRECTIONS[method]
    adjusted = function([c.p_value for c in comparisons])
    return [c.with_adjusted(p) for c, p in zip(comparisons, adjusted, strict=True)]


def verdict(comparison: PairedComparison, *, higher_is_better: bool = True, alpha: float = ALPHA) -> str:
    """``better``/``worse`` only when the adjusted (else raw) p < ``alpha``, otherwise ``no significant difference``."""
    p = comparison.p_adjusted if comparison.p_adjusted is not None else comparison.p_value
    if p >= alpha or comparison.diff == 0:
        return "no significant difference"
    improved = comparison.diff > 0 if higher_is_better else comparison.diff < 0
    return "better" if improved else "worse"
