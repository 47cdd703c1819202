"""The answer first (PROTOCOLS §7.6): the claims table a report opens with, and one paragraph of plain words.

Both are generated from the rows of :func:`polyret.report.claims.evaluate_claims` (the same rows ``claims.json``
holds), so the words never say more than the table.
"""

from __future__ import annotations

from collections.abc import Sequence

from polyret.report.blocks import Block, Heading, Paragraph, TableBlock
from polyret.report.claims import ClaimRow, ClaimsTable
from polyret.report.comparability import group_name
from polyret.report.significance import CORRECTIONS, MIN_SEEDS, PairedComparison, Verdict
from polyret.report.tables import GroupKey

_CLAIMS_HEADER = ("claim", "task", "metric", "comparison", "Δ (± seed sd)", "95% CI", "seeds", "verdict", "why")
_VERB = {
    Verdict.BETTER: "is significantly better than",
    Verdict.WORSE: "is significantly worse than",
    Verdict.MATCHES: "matches (non-inferior within the margin)",
    Verdict.NO_DIFFERENCE: "is not significantly different from",
}
_ROW_CLASS = {Verdict.BETTER: "better", Verdict.WORSE: "worse"}


def _delta(comparison: PairedComparison) -> str:
    spread = "" if comparison.seed_spread is None else f" (± {comparison.seed_spread:.2f})"
    return f"{comparison.diff:+.2f}{spread}"


def _ci(comparison: PairedComparison) -> str:
    return f"[{comparison.ci_low:+.2f}, {comparison.ci_high:+.2f}]"


def _p(comparison: PairedComparison | None) -> str:
    if comparison is None:
        return "—"
    p = comparison.p_adjusted if comparison.p_adjusted is not None else comparison.p_value
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _names(arm: GroupKey | None, reference: GroupKey | None) -> tuple[str, str]:
    """The two arms' names: their labels on one backbone, backbone / label across backbones."""
    if arm is None or reference is None:
        return ("—" if arm is None else group_name(arm), "—" if reference is None else group_name(reference))
    if arm[0] == reference[0]:
        return arm[1], reference[1]
    return group_name(arm), group_name(reference)


def _cells(row: ClaimRow, support: str) -> list[str]:
    arm, reference = _names(row.arm, row.reference)
    comparison = f"{arm} vs {reference}, {row.scope}" if row.arm is not None else row.scope
    c = row.comparison
    seeds = "—" if c is None else f"{c.seeds[0]} vs {c.seeds[1]}"
    why = "" if row.verdict_text.endswith(row.reason) else row.reason
    numbers = ["—", "—", "—"] if c is None or row.verdict is Verdict.NOT_TESTED else [_delta(c), _ci(c), _p(c)]
    return [f"{row.claim} ({support})", row.task or "—", row.metric, comparison, *numbers, seeds, row.verdict_text, why]


def _sentence(row: ClaimRow) -> str:
    arm, reference = _names(row.arm, row.reference)
    where = f"{row.metric}" + (f" on {row.task}" if row.task else "")
    c = row.comparison
    if row.verdict is Verdict.NOT_TESTED or c is None:
        subject = f"{arm} vs {reference} on {where}" if row.arm is not None else where
        why = "" if row.verdict_text.endswith(row.reason) else f" ({row.reason})"
        return f"{subject} is {row.verdict_text}{why}"
    numbers = f"Δ {c.diff:+.2f}, 95% CI {_ci(c)}, {c.seeds[0]} vs {c.seeds[1]} seeds; {row.reason}"
    return f"{arm}'s {where} ({row.scope}) {_VERB[row.verdict]} {reference}'s ({numbers})"


def claims_paragraph(table: ClaimsTable) -> str:
    """The claims in plain words: per claim its support, then each row's comparison as a sentence."""
    parts = []
    for spec in table.specs:
        rows = table.rows_of(spec.id)
        sentences = "; ".join(_sentence(row) for row in rows)
        parts.append(f"**{spec.id}** ({spec.statement}) is **{table.support[spec.id]}**: {sentences}.")
    return " ".join(parts)


def claims_section(table: ClaimsTable) -> list[Block]:
    """The claims table and its paragraph (the first section of a study report)."""
    _, correction_name = CORRECTIONS[table.correction]
    intro = Paragraph(
        "The claims of arXiv 2408.10536 and the research question (PROTOCOLS §7.6), one row per comparison. "
        "Items (a question with its translations, a sentence pair in both directions) are the resampled unit and "
        "seeds are a level: Δ is the difference of seed means (± the seed-to-seed standard deviation of a "
        f"one-seed difference), the 95% CI a two-level bootstrap ({table.n_resamples:,} resamples, seed "
        f"{table.seed}) and p a sign-flip test on item differences, corrected with {correction_name} within "
        f"each task. A trained arm needs {MIN_SEEDS} seeds for a verdict; “matches” is non-inferiority within "
        "1 point (5% of the reference for rank distance); low-resource groups weigh each language equally."
    )
    return [Heading(2, "Claims"), intro, claims_table(table), Paragraph(claims_paragraph(table))]


def claims_table(table: ClaimsTable, claims: Sequence[str] | None = None) -> TableBlock:
    """The rows of the claims table (of the ``claims`` named, default all), one per comparison."""
    rows = [row for row in table.rows if claims is None or row.claim in claims]
    return TableBlock(
        [*_CLAIMS_HEADER[:6], f"p ({table.correction})", *_CLAIMS_HEADER[6:]],
        [_cells(row, str(table.support[row.claim])) for row in rows],
        row_classes=[_ROW_CLASS.get(row.verdict, "") for row in rows],
    )
