"""Paired significance tests on items (clusters of queries) and seeds, and multiple-comparison corrections.

Two systems scored on the same queries give paired values; PROTOCOLS §7 fixes how they are tested:

- **Items** (§7.1): queries sharing an item (a LAReQA question and its translations, a Tatoeba line pair in both
  directions) are not independent, so everything resamples *items*: the per-item mean of the per-query values, per
  seed. With one query per item this is the per-query test.
- **Seeds** (§7.2): each arm's per-query values come from one or more training seeds. The CI is a two-level
  bootstrap (resample each arm's seeds with replacement, then items); p is the sign-flip test on the item-level
  differences of the seed means. A trained arm with fewer than :data:`MIN_SEEDS` seeds is ``Status.SINGLE_SEED``:
  its numbers are computed, its verdict is "not tested". The seed-to-seed spread comes beside every Δ.
- **Groups** (§7.4): ``macro=True`` weighs each stratum (language) equally: Δ is the mean of per-language mean
  differences; the bootstrap resamples items within each language; the sign-flip test flips item signs (within
  their language) and recomputes the macro mean, i.e. a sign-flip test of item differences weighted
  ``1 / (n_languages * n_items_in_language)``.

The building blocks:

- :func:`bootstrap_ci`: percentile bootstrap confidence interval of ``mean(d)`` (values resampled with
  replacement, as ``scipy.stats.bootstrap(method='percentile')``).
- :func:`sign_flip_test`: the paired randomisation test. Under H0 (the two systems are exchangeable per
  item) every ``d_i`` is equally likely to have either sign, so the null distribution of ``mean(d)`` is
  obtained by flipping signs at random (all ``2^n`` patterns when ``n`` is small: the exact test). The
  two-sided p-value follows ``scipy.stats.permutation_test`` (``permutation_type='samples'``):
  ``min(1, 2·min(P(T ≥ t), P(T ≤ t)))``, with ``+1`` in numerator and denominator for random resamples
  (so p is never 0) and none for the exact test.
- :func:`clustered_comparison` runs both on a :class:`PairedSample` (items, seeds, strata);
  :func:`paired_comparison` is its one-query-per-item, one-run-per-arm case.
- :func:`holm` and :func:`benjamini_hochberg` adjust a family of p-values; :func:`adjust` and
  :func:`adjust_by_family` fill them in (untested comparisons stay out of every family).
- :func:`verdict` turns a comparison into a :class:`Verdict`: never "better" unless the adjusted p < 0.05;
  "matches" when a non-inferiority :class:`Margin` is given and the CI stays within it (§7.5).

Every random draw comes from ``numpy.random.default_rng(seed)`` (items; seeds from a second stream), so a report
is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Literal

import numpy as np

ALPHA = 0.05
N_RESAMPLES = 10_000
EXACT_MAX_N = 16  # 2^16 = 65,536 sign patterns: enumerated exactly
MIN_SEEDS = 3  # PROTOCOLS §7.2: a verdict on a trained arm needs at least this many seeds
_CHUNK_CELLS = 4_000_000  # resamples x items held in memory at once
_SEED_STREAM = 1  # the seed draws of the two-level bootstrap use default_rng((seed, _SEED_STREAM))


class Words(str, Enum):
    """An enumeration whose members are the words a report prints (``str(member)`` is its value)."""

    def __str__(self) -> str:
        return str(self.value)


class Status(Words):
    """Whether a comparison may carry a verdict."""

    TESTED = "tested"
    SINGLE_SEED = "single seed"  # a trained arm has fewer than MIN_SEEDS seeds


class Verdict(Words):
    """The words a report may use for a comparison (PROTOCOLS §7.5, §7.6)."""

    BETTER = "better"
    WORSE = "worse"
    MATCHES = "matches"
    NO_DIFFERENCE = "no significant difference"
    NOT_TESTED = "not tested"


@dataclass(frozen=True)
class PairedComparison:
    """A paired comparison of system A against reference B on the same ``n`` queries (``n_items`` items).

    Means and ``diff`` are over items (the mean of item means of the seed means), or over strata of items for a
    macro comparison; ``seed_means_*`` are each seed's overall mean, ``seed_spread`` the standard deviation of the
    difference of two one-seed means (None when a trained arm has a single seed).
    """

    n: int
    mean_a: float
    mean_b: float
    diff: float  # mean over items of (a - b)
    ci_low: float
    ci_high: float
    p_value: float
    exact: bool  # the sign-flip test enumerated every pattern
    p_adjusted: float | None = None
    n_items: int = 0
    n_strata: int = 1
    seed_means_a: tuple[float, ...] = ()
    seed_means_b: tuple[float, ...] = ()
    seed_spread: float | None = None
    status: Status = Status.TESTED

    @property
    def seeds(self) -> tuple[int, int]:
        return len(self.seed_means_a), len(self.seed_means_b)

    def with_adjusted(self, p_adjusted: float | None) -> PairedComparison:
        return replace(self, p_adjusted=p_adjusted)


@dataclass(frozen=True)
class Arm:
    """One arm's per-query values, one row per seed: ``values[s, q]``.

    ``trained=False`` marks an arm whose one run says it all (the untouched backbone): it needs no seeds.
    """

    values: np.ndarray
    trained: bool = True


@dataclass(frozen=True)
class PairedSample:
    """Two arms on the same queries (same columns), each query's item and, for macro tests, its stratum."""

    a: Arm
    b: Arm
    items: np.ndarray  # (queries,) item labels; queries with one label are one item
    strata: np.ndarray | None = None  # (queries,) stratum labels (languages); each item must lie in one


@dataclass(frozen=True)
class Margin:
    """A non-inferiority margin (PROTOCOLS §7.5): ``value`` points, or ``value`` x the reference mean if relative."""

    value: float
    relative: bool = False

    def points(self, reference_mean: float) -> float:
        return self.value * abs(reference_mean) if self.relative else self.value


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


def _resampled_seed_means(per_seed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per resample (row), the mean over seeds drawn with replacement of ``per_seed`` (resamples x seeds)."""
    rows, n_seeds = per_seed.shape
    if n_seeds == 1:
        return per_seed[:, 0]
    draws = rng.integers(0, n_seeds, size=(rows, n_seeds))
    counts = np.stack([(draws == s).sum(axis=1) for s in range(n_seeds)], axis=1)
    return (counts * per_seed).sum(axis=1) / n_seeds


def _bootstrap_means(
    a: np.ndarray, b: np.ndarray, blocks: Sequence[slice], *, n_resamples: int, seed: int
) -> np.ndarray:
    """Bootstrap distribution of the (macro) mean of item differences: the items of each stratum (``blocks``,
    contiguous item ranges) are resampled within it, then each arm's seeds (rows of ``a`` and ``b``, seeds x items).

    The statistic is linear in the items, so each seed's mean over the drawn items is taken first and the seed draw
    then averages those of the seeds it picked. When one arm has a single run, the other arm's seed differences
    from it are resampled (the seed weights sum to 1), which saves one pass over the items.
    """
    item_rng = np.random.default_rng(seed)
    seed_rng = np.random.default_rng((seed, _SEED_STREAM))  # a separate stream: item draws do not depend on seeds
    single = a.shape[0] == 1 or b.shape[0] == 1
    columns = list(a - b) if single else [*a, *b]
    means = []
    for rows in _chunks(n_resamples, a.shape[1]):
        per_column = np.zeros((rows, len(columns)))
        for block in blocks:
            picks = item_rng.integers(0, block.stop - block.start, size=(rows, block.stop - block.start))
            for j, column in enumerate(columns):
                per_column[:, j] += column[block][picks].mean(axis=1)
        per_column /= len(blocks)
        if single:
            means.append(_resampled_seed_means(per_column, seed_rng))
        else:
            means.append(
                _resampled_seed_means(per_column[:, : a.shape[0]], seed_rng)
                - _resampled_seed_means(per_column[:, a.shape[0] :], seed_rng)
            )
    return np.concatenate(means)


def _percentile_interval(means: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_ci(
    diff: Sequence[float] | np.ndarray, *, n_resamples: int = N_RESAMPLES, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``diff`` (``scipy.stats.bootstrap(method='percentile')``)."""
    values = _as_diff(diff)
    means = _bootstrap_means(
        values[None, :], np.zeros((1, values.size)), [slice(0, values.size)], n_resamples=n_resamples, seed=seed
    )
    return _percentile_interval(means, confidence)


def sign_flip_null(
    diff: np.ndarray, *, n_resamples: int, seed: int, exact_max_n: int = EXACT_MAX_N
) -> tuple[np.ndarray, bool]:
    """The null distribution of ``mean(diff)`` under random sign flips, and whether it is exact."""
    n = diff.size
    if n <= exact_max_n and 2**n <= max(n_resamples, 2**exact_max_n):
        patterns = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1) * 2 - 1
        return (patterns * diff[None, :]).mean(axis=1), True
    rng = np.random.default_rng(seed)
    total = diff.sum()

    def null_means(rows: int) -> np.ndarray:
        # random bytes unpacked into 0/1 bits u give signs 2u - 1, so each mean is (2 u.d - sum(d)) / n: a
        # matrix-vector product (3x faster than drawing signs one by one)
        bits = np.unpackbits(rng.integers(0, 256, size=(rows, (n + 7) // 8), dtype=np.uint8), axis=1, count=n)
        return (2.0 * (bits.astype(np.float64) @ diff) - total) / n

    return np.concatenate([null_means(rows) for rows in _chunks(n_resamples, n)]), False


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
    """Compare per-query values ``a`` against reference ``b`` (same queries, same order), one item per query."""
    first, second = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if first.shape != second.shape:
        raise ValueError(f"paired values differ in length: {first.size} vs {second.size}")
    sample = PairedSample(
        Arm(first[None, :], trained=False), Arm(second[None, :], trained=False), np.arange(first.size)
    )
    return clustered_comparison(sample, n_resamples=n_resamples, confidence=confidence, seed=seed)


def _codes(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes of ``labels`` numbered by first appearance (one query per item keeps the query order)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.ravel()], int(first.size)


def _seed_matrix(values: np.ndarray, n_queries: int | None, name: str) -> np.ndarray:
    matrix = np.asarray(values, dtype=np.float64)
    matrix = matrix[None, :] if matrix.ndim == 1 else matrix
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"arm {name}: expected seeds x queries values, got shape {matrix.shape}")
    if n_queries is not None and matrix.shape[1] != n_queries:
        raise ValueError(f"paired values differ in length: {matrix.shape[1]} vs {n_queries}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"arm {name}: per-query values must be finite")
    return matrix


def _item_means(values: np.ndarray, codes: np.ndarray, n_items: int) -> np.ndarray:
    """Seeds x items: the mean of each item's queries, per seed."""
    counts = np.bincount(codes, minlength=n_items)
    return np.stack([np.bincount(codes, weights=row, minlength=n_items) for row in values]) / counts


def _strata_blocks(strata: np.ndarray | None, codes: np.ndarray, n_items: int) -> tuple[np.ndarray, list[slice]]:
    """An order of the items that makes each stratum a contiguous block, and the blocks (strata by first appearance).

    Every item must lie in exactly one stratum.
    """
    if strata is None:
        raise ValueError("a macro comparison needs the stratum (language) of every query")
    labels = np.asarray(strata).ravel()
    if labels.shape != codes.shape:
        raise ValueError(f"strata differ in length from the queries: {labels.size} vs {codes.size}")
    stratum_codes, n_strata = _codes(labels)
    of_item = np.empty(n_items, dtype=np.int64)
    of_item[codes] = stratum_codes
    if np.any(of_item[codes] != stratum_codes):
        raise ValueError("an item spans several strata; a macro comparison needs items nested in languages")
    stops = np.cumsum(np.bincount(of_item, minlength=n_strata))
    return np.argsort(of_item, kind="stable"), [
        slice(int(stop - size), int(stop)) for stop, size in zip(stops, np.diff(stops, prepend=0), strict=True)
    ]


def _macro_mean(values: np.ndarray, blocks: Sequence[slice]) -> float:
    return float(np.mean([values[block].mean() for block in blocks]))


def _seed_spread(arms: Sequence[tuple[tuple[float, ...], bool]]) -> float | None:
    """Std of the difference of two one-seed means: sqrt of the sum of the arms' seed variances.

    None when no arm has two seeds, or a trained arm has only one (its seed variance is unknown).
    """
    if all(len(means) < 2 for means, _ in arms) or any(trained and len(means) < 2 for means, trained in arms):
        return None
    return math.sqrt(sum(float(np.var(means, ddof=1)) for means, _ in arms if len(means) >= 2))


def clustered_comparison(
    sample: PairedSample,
    *,
    macro: bool = False,
    n_resamples: int = N_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
    min_seeds: int = MIN_SEEDS,
) -> PairedComparison:
    """Compare arm A against reference B on items (and seeds); ``macro``: each stratum weighs the same (§7.4).

    CI: two-level percentile bootstrap (``seed``); p: sign-flip test of the item differences of the seed means
    (``seed + 1``; exact for at most :data:`EXACT_MAX_N` items). See the module docstring.
    """
    a_values = _seed_matrix(sample.a.values, None, "a")
    b_values = _seed_matrix(sample.b.values, a_values.shape[1], "b")
    items = np.asarray(sample.items).ravel()
    if items.size != a_values.shape[1]:
        raise ValueError(f"items differ in length from the queries: {items.size} vs {a_values.shape[1]}")
    codes, n_items = _codes(items)
    a_items, b_items = _item_means(a_values, codes, n_items), _item_means(b_values, codes, n_items)
    blocks = [slice(0, n_items)]
    if macro:
        order, blocks = _strata_blocks(sample.strata, codes, n_items)
        a_items, b_items = a_items[:, order], b_items[:, order]
    item_diff = a_items.mean(axis=0) - b_items.mean(axis=0)
    flips = item_diff
    if len(blocks) > 1:  # weights 1 / (n_strata * n_items_in_stratum), scaled so that mean(flips) is the macro mean
        sizes = np.asarray([block.stop - block.start for block in blocks])
        flips = item_diff * np.repeat(n_items / (len(blocks) * sizes), sizes)
    p_value, exact = sign_flip_test(flips, n_resamples=n_resamples, seed=seed + 1)
    low, high = _percentile_interval(
        _bootstrap_means(a_items, b_items, blocks, n_resamples=n_resamples, seed=seed), confidence
    )
    seed_means_a = tuple(_macro_mean(row, blocks) for row in a_items)
    seed_means_b = tuple(_macro_mean(row, blocks) for row in b_items)
    arms = ((seed_means_a, sample.a.trained), (seed_means_b, sample.b.trained))
    too_few = any(trained and len(means) < min_seeds for means, trained in arms)
    return PairedComparison(
        n=int(a_values.shape[1]),
        mean_a=_macro_mean(a_items.mean(axis=0), blocks),
        mean_b=_macro_mean(b_items.mean(axis=0), blocks),
        diff=_macro_mean(item_diff, blocks),
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        exact=exact,
        n_items=n_items,
        n_strata=len(blocks),
        seed_means_a=seed_means_a,
        seed_means_b=seed_means_b,
        seed_spread=_seed_spread(arms),
        status=Status.SINGLE_SEED if too_few else Status.TESTED,
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
    """The comparisons with ``p_adjusted`` filled in, corrected across the whole sequence.

    Comparisons that may carry no verdict (``status`` not ``TESTED``) stay out of the family (``p_adjusted`` None).
    """
    function, _ = CORRECTIONS[method]
    tested = [i for i, c in enumerate(comparisons) if c.status is Status.TESTED]
    adjusted = dict(zip(tested, function([comparisons[i].p_value for i in tested]), strict=True))
    return [c.with_adjusted(adjusted.get(i)) for i, c in enumerate(comparisons)]


def adjust_by_family(
    comparisons: Sequence[PairedComparison], families: Sequence[Hashable], method: Correction = "holm"
) -> list[PairedComparison]:
    """:func:`adjust` within each family: ``families[i]`` names the family of ``comparisons[i]`` (e.g. its task)."""
    if len(families) != len(comparisons):
        raise ValueError(f"{len(comparisons)} comparisons but {len(families)} family keys")
    out = list(comparisons)
    for family in dict.fromkeys(families):
        members = [i for i, key in enumerate(families) if key == family]
        for i, comparison in zip(members, adjust([comparisons[i] for i in members], method), strict=True):
            out[i] = comparison
    return out


def non_inferior(comparison: PairedComparison, margin: Margin, *, higher_is_better: bool = True) -> bool:
    """The CI stays within ``margin`` on the losing side: lower bound > -margin (upper bound < +margin if lower is
    better); a relative margin scales with the reference mean (PROTOCOLS §7.5)."""
    width = margin.points(comparison.mean_b)
    return comparison.ci_low > -width if higher_is_better else comparison.ci_high < width


def verdict(
    comparison: PairedComparison, *, higher_is_better: bool = True, alpha: float = ALPHA, margin: Margin | None = None
) -> Verdict:
    """The verdict on ``comparison`` (adjusted p if set, else raw), in this order:

    not tested (status is not TESTED) · better (significant, Δ in the good direction) · matches (``margin`` given
    and :func:`non_inferior`) · worse (significant) · no significant difference.

    Significant means p < ``alpha``; when seeds were resampled (an arm has several), also a 95% CI on the same side
    of 0: the p-value holds the seed means fixed, so only the two-level CI carries run-to-run variance, and a
    method is not called better than another when re-training could plausibly reverse the sign.
    """
    if comparison.status is not Status.TESTED:
        return Verdict.NOT_TESTED
    p = comparison.p_adjusted if comparison.p_adjusted is not None else comparison.p_value
    significant = p < alpha and comparison.diff != 0
    if max(comparison.seeds, default=1) > 1:
        significant = significant and (comparison.ci_low > 0 or comparison.ci_high < 0)
    improved = comparison.diff > 0 if higher_is_better else comparison.diff < 0
    if significant and improved:
        return Verdict.BETTER
    if margin is not None and non_inferior(comparison, margin, higher_is_better=higher_is_better):
        return Verdict.MATCHES
    return Verdict.WORSE if significant else Verdict.NO_DIFFERENCE
