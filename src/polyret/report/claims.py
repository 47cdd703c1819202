"""The claims of PROTOCOLS §7.6 (C1–C5) on a study: each comparison a claim makes, tested, with its verdict.

A claim is a list of :class:`ClaimTest` (arm vs reference on one metric) over a :class:`Scope`:

- C1 hybrid ≥ X-X-mono and X-Y on Mul. mAP; C2 hybrid's rank distance < X-X-mono's; C3 hybrid matches X-X-mono on
  Mo. mAP and X-Y on Cr. mAP (every item of a LAReQA task, same backbone);
- C4 hybrid vs CRISS-style on the low-resource group, Tatoeba and UDHR, each direction (§7.4 macro test, any
  backbones: the CRISS-style runs may start from another model);
- C5 no low-resource language significantly below the untouched backbone (per-language tests of the hybrid and
  CRISS-style arms, same backbone; one row per arm, task and metric showing the worst language).

A test runs on every study task whose results report its metric (so no task name appears here), for every pair of
groups with the two roles. Roles come from each run's ``method`` through :func:`method_facts`, which reads the method
registry (:mod:`polyret.train.methods`). Statistics (:mod:`polyret.report.significance`): items and seeds (§7.1, §7.2);
Holm (or BH) within each family (§7.3): per task, all C1–C4 comparisons, and apart from them the per-language
C5 tests; "matches" is non-inferiority within :func:`noninferiority_margin` (§7.5). A row that cannot be tested says
why (:class:`NotTested`).

The result, :class:`ClaimsTable`, is plain data: ``to_json()`` is what ``claims.json`` holds, and a report renders
its rows (``verdict_text`` is the verdict column) and :attr:`ClaimsTable.support` (one word per claim).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from polyret.report.comparability import comparison_obstacle
from polyret.report.significance import (
    ALPHA,
    MIN_SEEDS,
    N_RESAMPLES,
    Correction,
    Margin,
    PairedComparison,
    Status,
    Verdict,
    Words,
    adjust_by_family,
    clustered_comparison,
    verdict,
)
from polyret.report.tables import GroupKey, Study, language_info, languages_of, lower_is_better, paired_sample
from polyret.train.methods import Method, find_method


class Role(Words):
    """What an arm is in the claims."""

    HYBRID = "hybrid batching"
    MONO = "X-X-mono"
    XY = "X-Y"
    CRISS = "CRISS-style"
    BACKBONE = "untouched backbone"


@dataclass(frozen=True)
class MethodFacts:
    """What the claims need to know about a method: its role (None: no claim uses it) and whether it is trained
    (a trained arm needs seeds)."""

    role: Role | None
    trained: bool = True


def _role(method: Method) -> Role | None:
    """A method's role, from its registry facts: untrained (the backbone), the α axis (hybrid sweeps it, X-X-mono
    sits at α = 1, X-Y at α = 0), or mining parallel text (CRISS-style)."""
    if not method.trained:
        return Role.BACKBONE
    if method.sweeps_alpha:
        return Role.HYBRID
    if method.alpha_equivalent is not None:
        return {1.0: Role.MONO, 0.0: Role.XY}.get(method.alpha_equivalent)
    return Role.CRISS if method.mines_text else None


def method_facts(name: str) -> MethodFacts:
    """The claims' facts about the method registered as ``name`` (an unknown method has no role and counts as
    trained)."""
    method = find_method(name)
    return MethodFacts(None) if method is None else MethodFacts(_role(method), trained=method.trained)


class Scope(Words):
    POOLED = "all items"
    LOW_RESOURCE_GROUP = "low-resource group"
    EACH_LOW_RESOURCE_LANGUAGE = "each low-resource language"


class Expect(Words):
    """What a claim says about its comparisons, which decides whether a verdict supports or refutes it."""

    AT_LEAST = "at least as good"  # better or matches supports; worse refutes
    BETTER = "better"  # better supports; worse refutes
    MATCHES = "matches"  # matches or better supports; worse refutes
    NOT_WORSE = "not significantly worse"  # anything but worse supports
    QUESTION = "question"  # no direction claimed: the verdicts answer it


_SUPPORTING: dict[Expect, tuple[set[Verdict], set[Verdict]]] = {
    Expect.AT_LEAST: ({Verdict.BETTER, Verdict.MATCHES}, {Verdict.WORSE}),
    Expect.BETTER: ({Verdict.BETTER}, {Verdict.WORSE}),
    Expect.MATCHES: ({Verdict.MATCHES, Verdict.BETTER}, {Verdict.WORSE}),
    Expect.NOT_WORSE: ({Verdict.BETTER, Verdict.MATCHES, Verdict.NO_DIFFERENCE}, {Verdict.WORSE}),
    Expect.QUESTION: (set(), set()),
}


@dataclass(frozen=True)
class ClaimTest:
    arm: Role
    reference: Role
    metric: str


@dataclass(frozen=True)
class ClaimSpec:
    id: str
    statement: str
    tests: tuple[ClaimTest, ...]
    scope: Scope
    expect: Expect
    same_backbone: bool = True  # pair arm and reference only on one backbone
    margin: bool = True  # "matches" (non-inferiority) may be said
    family: str = "claims"  # Holm family within a task


_LOW_RESOURCE_METRICS = ("xx2en.accuracy", "en2xx.accuracy", "xx2en.p@1", "en2xx.p@1")
CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        "C1",
        "hybrid ≥ X-X-mono and X-Y on Mul. mAP",
        (ClaimTest(Role.HYBRID, Role.MONO, "mul.map"), ClaimTest(Role.HYBRID, Role.XY, "mul.map")),
        Scope.POOLED,
        Expect.AT_LEAST,
    ),
    ClaimSpec(
        "C2",
        "hybrid's rank distance < X-X-mono's",
        (ClaimTest(Role.HYBRID, Role.MONO, "mul.rank_distance"),),
        Scope.POOLED,
        Expect.BETTER,
    ),
    ClaimSpec(
        "C3",
        "hybrid matches X-X-mono on Mo. mAP and X-Y on Cr. mAP",
        (ClaimTest(Role.HYBRID, Role.MONO, "mono.map"), ClaimTest(Role.HYBRID, Role.XY, "cross.map")),
        Scope.POOLED,
        Expect.MATCHES,
    ),
    ClaimSpec(
        "C4",
        "hybrid vs CRISS-style on the low-resource group (Tatoeba, UDHR P@1), each direction",
        tuple(ClaimTest(Role.HYBRID, Role.CRISS, metric) for metric in _LOW_RESOURCE_METRICS),
        Scope.LOW_RESOURCE_GROUP,
        Expect.QUESTION,
        same_backbone=False,
    ),
    ClaimSpec(
        "C5",
        "no low-resource language significantly below the untouched backbone (forgetting)",
        tuple(
            ClaimTest(arm, Role.BACKBONE, metric)
            for arm in (Role.HYBRID, Role.CRISS)
            for metric in _LOW_RESOURCE_METRICS
        ),
        Scope.EACH_LOW_RESOURCE_LANGUAGE,
        Expect.NOT_WORSE,
        margin=False,
        family="forgetting",
    ),
)


def noninferiority_margin(*, lower_is_better: bool) -> Margin:
    """PROTOCOLS §7.5: 1.0 point (mAP, accuracy, P@1), or 5 % of the reference for lower-is-better rank distances."""
    return Margin(0.05, relative=True) if lower_is_better else Margin(1.0)


class NotTested(Words):
    """Why a row carries no verdict."""

    SINGLE_SEED = "single seed"
    MISSING_ARM = "arm not in this study"
    NO_TASK = "no task reports the metric"
    NO_LOW_RESOURCE = "no low-resource language"
    NO_VALUES = "no paired per-query values"
    NOT_COMPARABLE = "not comparable"


class Support(Words):
    """A claim as a whole: every row supports it, some row refutes it, neither, or it is a question answered."""

    SUPPORTED = "supported"
    REFUTED = "refuted"
    UNDECIDED = "undecided"
    ANSWERED = "answered"
    NOT_TESTED = "not tested"


@dataclass(frozen=True)
class ClaimRow:
    """One comparison of a claim: ``comparison`` (None when not tested) and its verdict, ``reason`` in words."""

    claim: str
    statement: str
    metric: str
    task: str | None
    scope: str
    arm: GroupKey | None
    reference: GroupKey | None
    comparison: PairedComparison | None
    verdict: Verdict
    reason: str
    not_tested: NotTested | None = None
    supports: bool | None = None  # True: supports the claim, False: refutes it, None: neither

    @property
    def verdict_text(self) -> str:
        """The verdict column: the verdict, "single seed: not tested" or "not tested: <reason>"."""
        if self.not_tested is NotTested.SINGLE_SEED:
            return f"{NotTested.SINGLE_SEED}: not tested"
        if self.verdict is Verdict.NOT_TESTED:
            return f"not tested: {self.reason}"
        return str(self.verdict)

    def to_json(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "claim": self.claim,
            "statement": self.statement,
            "task": self.task,
            "metric": self.metric,
            "scope": self.scope,
            "arm": None if self.arm is None else "/".join(self.arm),
            "reference": None if self.reference is None else "/".join(self.reference),
            "delta": None if c is None else c.diff,
            "ci": None if c is None else [c.ci_low, c.ci_high],
            "p": None if c is None else c.p_value,
            "p_corrected": None if c is None else c.p_adjusted,
            "seeds": None if c is None else list(c.seeds),
            "seed_spread": None if c is None else c.seed_spread,
            "items": None if c is None else c.n_items,
            "verdict": str(self.verdict),
            "verdict_text": self.verdict_text,
            "not_tested": None if self.not_tested is None else str(self.not_tested),
            "reason": self.reason,
            "supports": self.supports,
        }


@dataclass(frozen=True)
class ClaimsTable:
    """Every claim's rows (in claim order), one :class:`Support` word per claim, and how they were computed."""

    specs: tuple[ClaimSpec, ...]
    rows: list[ClaimRow]
    support: dict[str, Support]
    correction: Correction
    n_resamples: int
    seed: int

    def rows_of(self, claim: str) -> list[ClaimRow]:
        return [row for row in self.rows if row.claim == claim]

    def to_json(self) -> dict[str, Any]:
        return {
            "correction": self.correction,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "claims": [
                {"id": spec.id, "statement": spec.statement, "support": str(self.support[spec.id])}
                for spec in self.specs
            ],
            "rows": [row.to_json() for row in self.rows],
        }


@dataclass
class _Pending:
    """A row before correction: its comparisons (one, or one per language for C5) and their family."""

    spec: ClaimSpec
    test: ClaimTest
    task: str | None = None
    arm: GroupKey | None = None
    reference: GroupKey | None = None
    languages: list[str] = field(default_factory=list)
    comparisons: list[PairedComparison] = field(default_factory=list)
    not_tested: NotTested | None = None
    reason: str = ""


def _groups_with(study: Study, role: Role) -> list[GroupKey]:
    return [key for key, runs in study.groups.items() if method_facts(runs[0].method).role is role]


def _tasks_reporting(study: Study, key: GroupKey, metric: str) -> list[str]:
    return [
        task
        for task in study.tasks
        if any(metric in values for result in study.results_for(key, task) for values in result.languages.values())
    ]


def _low_resource(study: Study, key: GroupKey, task: str) -> list[str]:
    return [code for code in languages_of(study.results_for(key, task)) if language_info(code).low_resource]


def _pairs(study: Study, spec: ClaimSpec, test: ClaimTest) -> tuple[list[tuple[GroupKey, GroupKey]], str]:
    """Every (arm, reference) pair of groups with the test's roles, or none and why."""
    arms, references = _groups_with(study, test.arm), _groups_with(study, test.reference)
    missing = [str(role) for role, keys in ((test.arm, arms), (test.reference, references)) if not keys]
    if missing:
        return [], f"{' and '.join(missing)} not in this study"
    pairs = [(a, r) for a in arms for r in references if a != r and (not spec.same_backbone or a[0] == r[0])]
    return pairs, "" if pairs else f"no {test.reference} on the backbone of {test.arm}"


def _test_pair(
    study: Study, spec: ClaimSpec, test: ClaimTest, pair: tuple[GroupKey, GroupKey], task: str, **resampling: int
) -> _Pending:
    """The comparisons of one (arm, reference, task) row, or why there are none."""
    arm, reference = pair
    pending = _Pending(spec, test, task, arm, reference)
    obstacle = comparison_obstacle(study, arm, reference, task)
    if obstacle is not None:
        pending.not_tested, pending.reason = NotTested.NOT_COMPARABLE, obstacle
        return pending
    trained = (study.trained(arm), study.trained(reference))
    if spec.scope is Scope.POOLED:
        groups: list[list[str] | None] = [None]
    else:
        pending.languages = _low_resource(study, arm, task)
        if not pending.languages:
            pending.not_tested, pending.reason = NotTested.NO_LOW_RESOURCE, f"no low-resource language in {task}"
            return pending
        groups = [pending.languages] if spec.scope is Scope.LOW_RESOURCE_GROUP else [[c] for c in pending.languages]
    tested: list[str] = []
    for languages in groups:
        sample = paired_sample(study, arm, reference, task, test.metric, languages, trained=trained)
        if sample is not None:
            macro = spec.scope is Scope.LOW_RESOURCE_GROUP
            pending.comparisons.append(clustered_comparison(sample, macro=macro, **resampling))
            tested.extend(languages or [])
    if spec.scope is Scope.EACH_LOW_RESOURCE_LANGUAGE:
        pending.languages = tested
    if not pending.comparisons:
        pending.not_tested, pending.reason = NotTested.NO_VALUES, f"no paired per-query values in {task}"
    elif any(c.status is Status.SINGLE_SEED for c in pending.comparisons):
        seeds_a, seeds_b = pending.comparisons[0].seeds
        pending.not_tested = NotTested.SINGLE_SEED
        pending.reason = f"{seeds_a} vs {seeds_b} seeds; a trained arm needs {MIN_SEEDS}"
    return pending


def _pending_rows(study: Study, spec: ClaimSpec, **resampling: int) -> list[_Pending]:
    rows: list[_Pending] = []
    for test in spec.tests:
        pairs, why = _pairs(study, spec, test)
        if not pairs:
            rows.append(_Pending(spec, test, not_tested=NotTested.MISSING_ARM, reason=why))
        for arm, reference in pairs:
            tasks = _tasks_reporting(study, arm, test.metric)
            if not tasks:
                reason = f"no task in this study reports {test.metric}"
                rows.append(_Pending(spec, test, None, arm, reference, not_tested=NotTested.NO_TASK, reason=reason))
            rows.extend(_test_pair(study, spec, test, (arm, reference), task, **resampling) for task in tasks)
    return rows


def _reason(
    comparison: PairedComparison, word: Verdict, margin: Margin | None, *, higher: bool, label: str, alpha: float
) -> str:
    """Why the verdict: the corrected p, a CI spanning 0 across seeds, and for a margin the CI bound it was held to."""
    p = comparison.p_adjusted if comparison.p_adjusted is not None else comparison.p_value
    parts = [f"p ({label}) {p:.3g}"]
    if word in (Verdict.BETTER, Verdict.WORSE):
        return parts[0]
    if p < alpha and comparison.ci_low <= 0 <= comparison.ci_high:
        parts.append("but the 95% CI, which carries the seed-to-seed variance, spans 0")
    if margin is not None:
        width = margin.points(comparison.mean_b)
        bound = f"lower bound {comparison.ci_low:+.2f}" if higher else f"upper bound {comparison.ci_high:+.2f}"
        within = "within" if word is Verdict.MATCHES else "outside"
        parts.append(f"95% CI {bound} {within} the {'-' if higher else '+'}{width:.2f} non-inferiority margin")
    return "; ".join(parts)


def _finish(pending: _Pending, *, label: str, alpha: float) -> ClaimRow:
    """The row of a pending comparison after correction: verdict, reason, support (C5: the worst language)."""
    spec, test = pending.spec, pending.test
    lower = pending.task is not None and lower_is_better(pending.task, test.metric)
    higher = not lower
    margin = noninferiority_margin(lower_is_better=lower) if spec.margin else None
    words = [verdict(c, higher_is_better=higher, alpha=alpha, margin=margin) for c in pending.comparisons]
    scope, comparison = str(spec.scope), pending.comparisons[0] if pending.comparisons else None
    if spec.scope is Scope.LOW_RESOURCE_GROUP and pending.languages:
        scope = f"low-resource group ({len(pending.languages)} languages, equally weighted)"
    elif spec.scope is Scope.EACH_LOW_RESOURCE_LANGUAGE and pending.comparisons:
        worst = min(range(len(words)), key=lambda i: pending.comparisons[i].diff * (1 if higher else -1))
        scope = f"each of {len(words)} low-resource languages (shown: the worst, {pending.languages[worst]})"
        comparison = pending.comparisons[worst]
    row = {"claim": spec.id, "statement": spec.statement, "metric": test.metric, "task": pending.task}
    row.update({"scope": scope, "arm": pending.arm, "reference": pending.reference, "comparison": comparison})
    if pending.not_tested is not None or comparison is None:
        kind = pending.not_tested or NotTested.NO_VALUES
        return ClaimRow(**row, verdict=Verdict.NOT_TESTED, reason=pending.reason, not_tested=kind)
    if spec.scope is Scope.EACH_LOW_RESOURCE_LANGUAGE:
        worse = [lang for lang, word in zip(pending.languages, words, strict=True) if word is Verdict.WORSE]
        word = Verdict.WORSE if worse else Verdict.NO_DIFFERENCE
        reason = f"significantly below on {', '.join(worse)}" if worse else f"none significantly below ({label})"
    else:
        word, reason = words[0], _reason(comparison, words[0], margin, higher=higher, label=label, alpha=alpha)
    good, bad = _SUPPORTING[spec.expect]
    supports = True if word in good else False if word in bad else None
    return ClaimRow(**row, verdict=word, reason=reason, supports=supports)


def claim_support(spec: ClaimSpec, rows: Sequence[ClaimRow]) -> Support:
    """One word for a claim from its rows (see :class:`Support`)."""
    tested = [row for row in rows if row.verdict is not Verdict.NOT_TESTED]
    if not tested:
        return Support.NOT_TESTED
    if spec.expect is Expect.QUESTION:
        return Support.ANSWERED if len(tested) == len(rows) else Support.UNDECIDED
    if any(row.supports is False for row in tested):
        return Support.REFUTED
    if len(tested) == len(rows) and all(row.supports for row in rows):
        return Support.SUPPORTED
    return Support.UNDECIDED


def evaluate_claims(
    study: Study,
    *,
    claims: Sequence[ClaimSpec] = CLAIMS,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    correction: Correction = "holm",
    alpha: float = ALPHA,
) -> ClaimsTable:
    """Test every claim on ``study``; p-values corrected with ``correction`` within each (task, family)."""
    pending = [row for spec in claims for row in _pending_rows(study, spec, n_resamples=n_resamples, seed=seed)]
    flat = [(i, j) for i, row in enumerate(pending) for j in range(len(row.comparisons))]
    families: list[Hashable] = [(pending[i].task, pending[i].spec.family) for i, _ in flat]
    adjusted = adjust_by_family([pending[i].comparisons[j] for i, j in flat], families, correction)
    for (i, j), comparison in zip(flat, adjusted, strict=True):
        pending[i].comparisons[j] = comparison
    rows = [_finish(row, label=correction, alpha=alpha) for row in pending]
    support = {spec.id: claim_support(spec, [row for row in rows if row.claim == spec.id]) for spec in claims}
    return ClaimsTable(tuple(claims), rows, support, correction, n_resamples, seed)
