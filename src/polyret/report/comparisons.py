"""The report's comparisons against the reference method: paired tests per task and per language.

Each group is compared with the reference on the same backbone (or on ``reference_backbone``), on the task's main
metric, query by query (:func:`polyret.report.tables.paired_arrays`), with the tests of
:mod:`polyret.report.significance`; p-values are corrected across each table. The report lays these out
(:mod:`polyret.report.sections`); nothing here formats text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from polyret.report.comparability import group_differences, transductive_groups
from polyret.report.significance import Correction, PairedComparison, adjust, paired_comparison, verdict
from polyret.report.tables import GroupKey, Study, lower_is_better, paired_arrays

NO_DIFFERENCE = "no significant difference"


@dataclass(frozen=True)
class PairedTests:
    """How the paired tests run: resamples, seed, and the correction across a table."""

    n_resamples: int
    seed: int
    correction: Correction

    def compare(
        self, study: Study, key: GroupKey, ref: GroupKey, task: str, metric: str, langs: Sequence[str] | None = None
    ) -> PairedComparison | None:
        """``key`` against ``ref`` on the queries both have (of ``langs``); None without per-query values."""
        a, b = paired_arrays(study, key, ref, task, metric, langs)
        return paired_comparison(a, b, n_resamples=self.n_resamples, seed=self.seed) if a.size else None


@dataclass(frozen=True)
class Comparison:
    """One group against its reference on one task's main metric (p-values corrected across the table)."""

    task: str
    key: GroupKey
    reference: GroupKey
    metric: str
    result: PairedComparison
    verdict: str


@dataclass
class SignificanceTable:
    comparisons: list[Comparison] = field(default_factory=list)
    #: what could not be tested and why, in words
    skipped: list[str] = field(default_factory=list)


def group_name(key: GroupKey) -> str:
    return f"{key[0]} / {key[1]}"


def significance_table(study: Study, tests: PairedTests) -> SignificanceTable:
    """Every group against the reference, per task, on the main metric; Holm/BH across the whole table."""
    table = SignificanceTable()
    pending: list[tuple[str, GroupKey, GroupKey, str, PairedComparison]] = []
    for task in study.tasks:
        metric = study.main_metric(task)
        if metric is None:
            continue
        for key in study.keys(task):
            ref = study.reference_key(key[0])
            if key == ref:
                continue
            if ref is None:
                table.skipped.append(f"{task}: {group_name(key)} (no {study.reference} run on backbone {key[0]})")
                continue
            transductive = transductive_groups(study, (key, ref), task)
            if transductive:
                names = ", ".join(map(group_name, transductive))
                table.skipped.append(f"{task}: {group_name(key)} (transductive: {names} trained on its text)")
                continue
            differences = group_differences(study, key, ref, task)
            if differences:
                table.skipped.append(
                    f"{task}: {group_name(key)} vs {group_name(ref)} (not comparable: {', '.join(differences)})"
                )
                continue
            result = tests.compare(study, key, ref, task, metric)
            if result is None:
                table.skipped.append(f"{task}: {group_name(key)} (no per-query values)")
                continue
            pending.append((task, key, ref, metric, result))
    adjusted = adjust([entry[4] for entry in pending], tests.correction)
    for (task, key, ref, metric, _), result in zip(pending, adjusted, strict=True):
        word = verdict(result, higher_is_better=not lower_is_better(task, metric))
        table.comparisons.append(Comparison(task, key, ref, metric, result, word))
    return table


def language_differences(
    study: Study, tests: PairedTests, task: str, metric: str, keys: Sequence[GroupKey], langs: Sequence[str]
) -> dict[tuple[GroupKey, str], bool]:
    """(group, language) -> whether it is significantly above the reference there (below: False; absent: no
    significant difference), corrected across the language × group cells of the table."""
    cells: list[tuple[GroupKey, str, PairedComparison]] = []
    for key in keys:
        ref = study.reference_key(key[0])
        if ref is None or key == ref or transductive_groups(study, (key, ref), task):
            continue
        if group_differences(study, key, ref, task):
            continue
        for lang in langs:
            result = tests.compare(study, key, ref, task, metric, [lang])
            if result is not None:
                cells.append((key, lang, result))
    differences: dict[tuple[GroupKey, str], bool] = {}
    for (key, lang, _), result in zip(cells, adjust([c[2] for c in cells], tests.correction), strict=True):
        if verdict(result, higher_is_better=not lower_is_better(task, metric)) != NO_DIFFERENCE:
            differences[(key, lang)] = result.diff > 0
    return differences
