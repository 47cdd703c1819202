"""The report's comparisons against the reference method: paired tests per task, per language and per group.

Each group is compared with the reference on the same backbone (or on ``reference_backbone``) on items and seeds
(PROTOCOLS §7.1, §7.2: :func:`polyret.report.tables.paired_sample`, then
:func:`polyret.report.significance.clustered_comparison`), on every metric its task tests (§7.3: the task
registry's ``tested``, else the main score); p-values are corrected within each task (the significance table) or
across the language × group cells of one table. The report lays these out (:mod:`polyret.report.sections`);
nothing here formats text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from polyret.eval.tasks import find_task
from polyret.report.comparability import comparison_obstacle, group_name
from polyret.report.significance import (
    Correction,
    PairedComparison,
    Verdict,
    adjust,
    adjust_by_family,
    clustered_comparison,
    verdict,
)
from polyret.report.tables import GroupKey, Study, lower_is_better, paired_sample

_CacheKey = tuple[str, GroupKey, GroupKey, str, str, tuple[str, ...] | None, bool]


@dataclass(frozen=True)
class PairedTests:
    """How the paired tests run: resamples, seed, and the correction; each comparison is computed once per report
    (the per-language table and the forest plot share theirs)."""

    n_resamples: int
    seed: int
    correction: Correction
    _done: dict[_CacheKey, PairedComparison | None] = field(default_factory=dict, compare=False, repr=False)

    def compare(
        self,
        study: Study,
        key: GroupKey,
        ref: GroupKey,
        task: str,
        metric: str,
        langs: Sequence[str] | None = None,
        *,
        macro: bool = False,
    ) -> PairedComparison | None:
        """``key`` against ``ref`` on the items both have (of ``langs``; ``macro``: each language weighs the same);
        None without per-query values."""
        cache_key = (str(study.study_dir), key, ref, task, metric, None if langs is None else tuple(langs), macro)
        if cache_key not in self._done:
            trained = (study.trained(key), study.trained(ref))
            sample = paired_sample(study, key, ref, task, metric, langs, trained=trained)
            self._done[cache_key] = (
                None
                if sample is None
                else clustered_comparison(sample, macro=macro, n_resamples=self.n_resamples, seed=self.seed)
            )
        return self._done[cache_key]


@dataclass(frozen=True)
class Comparison:
    """One group against its reference on one metric of a task (p-values corrected within the task)."""

    task: str
    key: GroupKey
    reference: GroupKey
    metric: str
    result: PairedComparison
    verdict: Verdict


@dataclass
class SignificanceTable:
    comparisons: list[Comparison] = field(default_factory=list)
    #: what could not be tested and why, in words
    skipped: list[str] = field(default_factory=list)


def tested_metrics(study: Study, task: str) -> list[str]:
    """The metrics of ``task`` the report tests (PROTOCOLS §7.3) that its results report, else the main metric."""
    meta = find_task(task)
    results = [r for key in study.keys(task) for r in study.results_for(key, task)]
    reported = {metric for result in results for values in result.languages.values() for metric in values}
    metrics = [m for m in (meta.tested if meta is not None else ()) if m in reported]
    main = study.main_metric(task)
    return metrics or ([main] if main is not None else [])


def significance_table(study: Study, tests: PairedTests) -> SignificanceTable:
    """Every group against the reference, per task, on each tested metric; Holm/BH within each task."""
    table = SignificanceTable()
    pending: list[tuple[str, GroupKey, GroupKey, str, PairedComparison]] = []
    for task in study.tasks:
        for key in study.keys(task):
            ref = study.reference_key(key[0])
            if key == ref:
                continue
            if ref is None:
                table.skipped.append(f"{task}: {group_name(key)} (no {study.reference} run on backbone {key[0]})")
                continue
            obstacle = comparison_obstacle(study, key, ref, task)
            if obstacle is not None:
                against = "" if obstacle.startswith("transductive") else f" vs {group_name(ref)}"
                table.skipped.append(f"{task}: {group_name(key)}{against} ({obstacle})")
                continue
            for metric in tested_metrics(study, task):
                result = tests.compare(study, key, ref, task, metric)
                if result is None:
                    table.skipped.append(f"{task}: {group_name(key)} on {metric} (no per-query values)")
                    continue
                pending.append((task, key, ref, metric, result))
    adjusted = adjust_by_family([entry[4] for entry in pending], [entry[0] for entry in pending], tests.correction)
    for (task, key, ref, metric, _), result in zip(pending, adjusted, strict=True):
        word = verdict(result, higher_is_better=not lower_is_better(task, metric))
        table.comparisons.append(Comparison(task, key, ref, metric, result, word))
    return table


def language_comparisons(
    study: Study, tests: PairedTests, task: str, metric: str, keys: Sequence[GroupKey], langs: Sequence[str]
) -> dict[tuple[GroupKey, str], PairedComparison]:
    """(group, language) -> the group against its reference on that language, p corrected across the cells."""
    cells: list[tuple[GroupKey, str, PairedComparison]] = []
    for key in keys:
        ref = study.reference_key(key[0])
        if ref is None or key == ref or comparison_obstacle(study, key, ref, task) is not None:
            continue
        for lang in langs:
            result = tests.compare(study, key, ref, task, metric, [lang])
            if result is not None:
                cells.append((key, lang, result))
    adjusted = adjust([c[2] for c in cells], tests.correction)
    return {(key, lang): result for (key, lang, _), result in zip(cells, adjusted, strict=True)}


def language_differences(
    study: Study, tests: PairedTests, task: str, metric: str, keys: Sequence[GroupKey], langs: Sequence[str]
) -> dict[tuple[GroupKey, str], bool]:
    """(group, language) -> whether it is significantly above the reference there (below: False; absent: no
    significant difference or not tested), corrected across the language × group cells of the table."""
    higher = not lower_is_better(task, metric)
    cells = language_comparisons(study, tests, task, metric, keys, langs)
    called = {cell: verdict(result, higher_is_better=higher) for cell, result in cells.items()}
    return {cell: cells[cell].diff > 0 for cell, word in called.items() if word in (Verdict.BETTER, Verdict.WORSE)}
