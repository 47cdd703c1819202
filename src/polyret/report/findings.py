"""``docs/findings.md``: polyret's answer to its research question, generated from one study directory.

:func:`write_findings` reads a finished or partial study (:func:`polyret.report.tables.load_study`) and writes one
Markdown document from the report's own pieces, so no number in it is typed by hand: its status (runs finished),
the claims table and its paragraph (:mod:`polyret.report.answer`), the per-language tables of the tasks the
low-resource claims test and of every lower-is-better metric (rank distance per query language;
:func:`polyret.report.sections.language_table`, ▲/▼ marks included), the report's figures (copied as PNG and SVG
beside the document), and the best trained arm beside arXiv 2408.10536's headline numbers
(:func:`polyret.report.published.headline_references`) with the settings that differ, CRISS's own claim beside what
each arm does to the untouched backbone on Tatoeba (:func:`polyret.report.published.mining_claims`), and what each
arm cost (minutes per stage, CPU share, load, from the runs' records). The prose around them (limits, the commands,
whether a GPU run exists) says nothing that depends on the study's numbers.

``readme=`` also rewrites the "What polyret found" section of a README between :data:`START` and :data:`END`
(inserted before the README's second level-2 section the first time), with the first claim's rows.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyret.errors import ConfigError
from polyret.io import atomic_write, read_json
from polyret.report import published as pub
from polyret.report.answer import claims_section, claims_table
from polyret.report.blocks import Block, CodeBlock, FigureBlock, Heading, Paragraph, TableBlock, render_markdown
from polyret.report.claims import CLAIMS, ClaimsTable, Role, Scope, evaluate_claims, method_facts
from polyret.report.comparisons import PairedTests
from polyret.report.figures import FigureFiles
from polyret.report.sections import banners, fmt, language_table, metric_label, task_figures
from polyret.report.significance import N_RESAMPLES, Correction
from polyret.report.tables import (
    RunRecord,
    Study,
    headline_metrics,
    load_study,
    lower_is_better,
    order_languages,
)

START, END = "<!-- findings:start -->", "<!-- findings:end -->"
README_HEADING = "What polyret found"

LIMITS = (
    "**Backbone.** Every arm fine-tunes the embedded multilingual-e5-small, rebuilt from 4-bit weights (near, not "
    "equal to, the fp32 model), not XLM-R or LaBSE (arXiv 2408.10536) nor mBART-cc25 (CRISS); effects on a small, "
    "already contrastively trained encoder need not carry over to those backbones.",
    "**Training data.** The contrastive arms train on MLQA-R's query-passage pairs (7 languages), not the paper's "
    "machine-translated QA mix in 9 languages (not public); every evaluation is zero-shot on other benchmarks.",
    "**CRISS-style, not CRISS.** The CRISS-style arm mines pairs with ratio-margin k-NN from the study's own training "
    "text (its alignment removed) and trains them with InfoNCE; CRISS fine-tunes mBART on translation of its mined "
    "pairs over several iterations. The comparison is of the mining idea, not of CRISS's objective or model.",
    "**Budget.** A 2-core CPU: each run sees the same fixed number of training pairs (the runs table of the study's "
    "report gives the step each run kept), orders of magnitude fewer than the paper's training, at batch sizes below "
    "its 100 (in-batch negatives are fewer).",
    "**Selection.** Every arm keeps a fixed step (no early stopping on a validation loss, unlike the paper): the "
    "same for all arms, so it favours none, but an arm that peaks earlier or later is judged off its peak.",
    "**Statistics.** Three seeds per trained arm are the fewest a verdict allows (PROTOCOLS §7.2); Holm correction "
    "within each task keeps the family-wise error, at the price of power.",
)
GPU_STATUS = (
    "**GPU run: none.** `configs/gpu-study.yaml` is the same study for one GPU (batch 100, bf16, ≥ 1,000 steps per "
    "run); no GPU was lent when this document was written, so it has no results and no columns here."
)


@dataclass(frozen=True)
class FindingsFiles:
    markdown: Path
    figures: list[Path]
    readme: Path | None = None


@dataclass(frozen=True)
class Place:
    """Where the document goes: its folder (links are relative to it) and the folder of its figures and CSVs."""

    root: Path
    figures: Path


def write_findings(
    study_dir: str | Path,
    output: str | Path = "docs/findings.md",
    figures_dir: str | Path | None = None,
    readme: str | Path | None = None,
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    correction: Correction = "holm",
    command: str | None = None,
) -> FindingsFiles:
    """Write ``output`` (and its figures into ``figures_dir``, default ``output`` without its suffix) from the
    study in ``study_dir``; with ``readme``, rewrite that README's findings section too."""
    output = Path(output)
    place = Place(output.parent, Path(figures_dir) if figures_dir is not None else output.with_suffix(""))
    if not place.figures.resolve().is_relative_to(place.root.resolve()):
        raise ConfigError(f"figures folder {place.figures} is not inside {place.root}: the document links them")
    if readme is not None and not Path(readme).is_file():
        raise ConfigError(f"{readme}: README not found (give the README whose findings section to rewrite)")
    study = load_study(study_dir)
    claims = evaluate_claims(study, n_resamples=n_resamples, seed=seed, correction=correction)
    tests = PairedTests(n_resamples, seed, correction)
    command = command or shlex.join(["python", "scripts/findings.py", str(study_dir), "--output", str(output)])
    blocks = findings_blocks(study, claims, tests, place, command)
    readme_text = None  # made before anything is written: a README with a broken marker stops the run here
    if readme is not None:
        link = Path(os.path.relpath(output, Path(readme).parent)).as_posix()
        readme_text = replace_section(Path(readme).read_text(encoding="utf-8"), readme_section(study, claims, link))
    with atomic_write(output) as handle:
        handle.write(render_markdown(blocks, place.root))
    if readme is not None and readme_text is not None:  # (both or neither: for the type checker)
        with atomic_write(readme) as handle:
            handle.write(readme_text)
    figures = [
        path for block in blocks if isinstance(block, FigureBlock) for path in (block.files.png, block.files.svg)
    ]
    return FindingsFiles(output, figures, None if readme is None else Path(readme))


def findings_blocks(study: Study, claims: ClaimsTable, tests: PairedTests, place: Place, command: str) -> list[Block]:
    """Every block of the findings document, in order (figures are copied as their section is built)."""
    groups = pub.our_groups(study)
    return [
        Heading(1, f"What polyret found: the {study.name} study"),
        *([Paragraph(str(study.meta["description"]))] if study.meta.get("description") else []),
        Paragraph(status_line(study)),
        *banners(study),
        Paragraph(GPU_STATUS),
        *claims_section(claims),
        *low_resource_tables(study, tests, place),
        *lower_is_better_tables(study, tests, place),
        *figures(study, tests, place),
        *beside_the_paper(study, groups),
        *beside_criss(study, groups),
        Heading(2, "Limits"),
        *(Paragraph(text) for text in LIMITS),
        *cost_section(study),
        *reproduction(study, command),
    ]


def status_line(study: Study) -> str:
    done = sum(run.done for run in study.runs)
    if done == len(study.runs):
        return f"**Status:** all {len(study.runs)} runs of the study are finished (`{study.study_dir}`)."
    return (
        f"**Status: partial study.** {done} of {len(study.runs)} runs are finished (`{study.study_dir}`); a claim "
        "whose arms lack seeds reads “not tested”, and every number may still change."
    )


def low_resource_tables(study: Study, tests: PairedTests, place: Place) -> list[Block]:
    """Per language, the main metric of each task the low-resource claims test (low-resource languages first)."""
    metrics = {test.metric for spec in CLAIMS if spec.scope is Scope.LOW_RESOURCE_GROUP for test in spec.tests}
    blocks: list[Block] = []
    for task in study.tasks:
        metric = study.main_metric(task)
        if metric in metrics:
            blocks += language_table(study, tests, task, metric, tables=place.figures, root=place.root)
    if not blocks:
        return []
    return [Heading(2, "Low-resource languages, one row per language"), Paragraph(_LANGUAGE_NOTE), *blocks]


def lower_is_better_tables(study: Study, tests: PairedTests, place: Place) -> list[Block]:
    """Per query language, each lower-is-better headline metric (LAReQA's rank distance: each language's mean over
    its queries of the spread between the best and worst rank of their parallel answers in the full pool)."""
    blocks: list[Block] = []
    for task in study.tasks:
        results = [r for key in study.keys(task) for r in study.results_for(key, task)]
        for metric in (m for m in headline_metrics(task, results) if lower_is_better(task, m)):
            blocks += language_table(study, tests, task, metric, tables=place.figures, root=place.root)
    if not blocks:
        return []
    intro = Paragraph(
        "Rank distance per query language: the mean over that language's queries of the spread between the best and "
        f"worst rank of their parallel answers in the full multilingual pool (lower is better; {_MARKS})."
    )
    return [Heading(2, "Rank distance per query language"), intro, *blocks]


_MARKS = "▲/▼: significantly above/below the reference on that language, items and seeds as in the claims"
_LANGUAGE_NOTE = (
    f"Mean ± std over seeds; † low-resource (PROTOCOLS §4, listed first), * not in the training languages; {_MARKS}, "
    "Holm across each table's cells; none with fewer than 3 seeds per trained arm."
)


def figures(study: Study, tests: PairedTests, place: Place) -> list[Block]:
    """The report's figures per task (forest plots of Δ per language, the α sweep, …), copied beside the document."""
    made = [_copy(files, place.figures) for task in study.tasks for files in task_figures(study, tests, task)]
    if not made:
        return []
    return [Heading(2, "Figures"), *(FigureBlock(files) for files in made)]


def _copy(files: FigureFiles, folder: Path) -> FigureFiles:
    copied = []
    for path in (files.png, files.svg):
        with atomic_write(folder / path.name, "wb", encoding=None) as handle:
            handle.write(path.read_bytes())
        copied.append(folder / path.name)
    return FigureFiles(files.title, copied[0], copied[1], files.caption)


def beside_the_paper(study: Study, groups_by_task: dict[str, list[pub.OurGroup]]) -> list[Block]:
    """The best trained arm's headline numbers beside arXiv 2408.10536's, and every setting that differs."""
    references, metrics = pub.headline_references(), pub.HEADLINE_METRICS
    task = references[0].task
    groups = groups_by_task.get(task, [])
    best = pub.best_trained_group(groups, metrics[0], higher_is_better=not lower_is_better(task, metrics[0]))
    heading = Heading(2, "Beside arXiv 2408.10536")
    if best is None:
        return [heading, Paragraph(f"No trained arm of this study has {task} results yet: nothing to set beside.")]
    runs = study.groups[(best.backbone, best.label)]
    rows = [
        [
            f"this study: {best.backbone} / {best.label} ({len(runs)} seed{'s' * (len(runs) != 1)})",
            *(fmt(best.overall.get(m)) for m in metrics),
        ]
    ]
    rows += [
        [f"{ref.cite}: {ref.backbone} / {ref.method}", *(fmt(ref.metrics.get(m)) for m in metrics)]
        for ref in references
    ]
    setup = _study_setup(study, best, runs)
    return [
        heading,
        Paragraph(
            f"The best trained arm by {metrics[0]} on {task} (mean over its seeds, the full multilingual pool) beside "
            "the paper's hybrid runs. Not comparable (PROTOCOLS §6.5): the settings below differ."
        ),
        TableBlock(["arm", *(metric_label(task, m) for m in metrics)], rows),
        TableBlock(
            ["setting", "this study", "arXiv 2408.10536"],
            [[name, setup[name], value] for name, value in pub.PAPER_SETUP.items()],
            caption="Settings",
        ),
        Paragraph(
            "Differences polyret's comparison lists: "
            + " ".join(
                f"against {ref.backbone}: {'; '.join(pub.reference_differences(ref, best))}." for ref in references
            )
        ),
    ]


def beside_criss(study: Study, groups_by_task: dict[str, list[pub.OurGroup]]) -> list[Block]:
    """CRISS's claim (fine-tuning on mined pairs raises Tatoeba accuracy well over the starting model) beside what
    each arm of the study does to its untouched backbone there, per language group (means over seeds, each language
    weighed equally; the per-language tests are C5's)."""
    claim = pub.mining_claims()[0]
    metric = next(iter(claim.metrics))
    groups = groups_by_task.get(claim.task, [])
    heading = Heading(2, "Beside CRISS (arXiv 2006.09526)")
    untouched = next((g for g in groups if not method_facts(g.method).trained), None)
    miners = [g for g in groups if method_facts(g.method).role is Role.CRISS]
    if untouched is None or not miners:
        return [
            heading,
            Paragraph(f"The study has no CRISS-style arm beside its untouched backbone on {claim.task} yet."),
        ]
    low, other = order_languages(untouched.per_language)

    def mean(group: pub.OurGroup, languages: list[str]) -> float | None:
        values = [group.per_language[code][metric] for code in languages if metric in group.per_language.get(code, {})]
        return sum(values) / len(values) if len(values) == len(languages) and values else None

    def difference(group: pub.OurGroup, languages: list[str]) -> float | None:
        ours, base = mean(group, languages), mean(untouched, languages)
        return None if ours is None or base is None or group is untouched else ours - base

    rows = [
        [
            f"{g.backbone} / {g.label}",
            fmt(mean(g, low)),
            _signed(difference(g, low)),
            fmt(mean(g, other)),
            _signed(difference(g, other)),
        ]
        for g in groups
        if g.backbone == untouched.backbone
    ]
    changes = [
        f"{miner.backbone} / {miner.label} moves the low-resource mean by {shift:+.1f} points "
        f"({'the direction CRISS reports' if shift > 0 else 'against the direction CRISS reports'})"
        for miner in miners
        if (shift := difference(miner, low)) is not None
    ] or ["no CRISS-style arm has a result on every low-resource language"]
    return [
        heading,
        Paragraph(
            f"CRISS reports that fine-tuning on the pairs a model mines itself raises {claim.task} accuracy well over "
            f"the starting model ({metric} of both directions {claim.metrics[metric]:.1f} on {claim.languages} with "
            f"{claim.backbone} after {claim.conditions.get('iterations')} iterations of translation training; "
            f"{claim.cite}). Here, against the untouched {untouched.backbone} on the same metric: "
            f"{'; '.join(changes)}. Point estimates over seeds; C5 in the claims table tests each language."
        ),
        TableBlock(
            [
                "arm",
                f"{metric}, low-resource ({len(low)})",
                "Δ vs untouched",
                f"{metric}, other ({len(other)})",
                "Δ vs untouched",
            ],
            rows,
        ),
    ]


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}"


def _study_setup(study: Study, best: pub.OurGroup, runs: Sequence[RunRecord]) -> dict[str, str]:
    """The study's side of :data:`polyret.report.published.PAPER_SETUP` for its best arm."""
    specs = {spec["name"]: spec for spec in study.meta.get("runs", [])}
    train = specs.get(runs[0].name, {}).get("train") or {}
    batch = train.get("batch_size") or (train.get("contrastive") or {}).get("batch_size")
    steps = sorted({run.kept_step for run in runs if run.kept_step is not None})
    rule = study.meta.get("config", {}).get("selection") or {}
    kept = "fixed budget" if rule.get("fixed_steps") else "lowest shared validation loss"
    return {
        "backbone": best.model,
        "training data": best.trained_on or "none",
        "candidate text": str(best.task_config.get("candidate_text", "—")),
        "steps × batch": f"{', '.join(map(str, steps)) or '—'} × {batch or '—'}; the step kept: {kept}",
        "seeds": str(len(runs)),
    }


@dataclass(frozen=True)
class RunCost:
    """What one finished run took, from its ``run.json`` (the last attempt) and its tasks' done markers."""

    seconds: float
    train_seconds: float
    task_seconds: dict[str, float]
    cpu_seconds: float | None  # None: written before the runner recorded it
    load: float | None  # the 1-minute load average when the run ended
    precisions: frozenset[str]  # what its evaluations ran in (``auto`` resolves per machine: bf16 or fp32)
    machine: str | None  # its CPU model; None: written before the runner recorded the machine per run
    started: dt.datetime | None
    finished: dt.datetime | None


def run_cost(run: RunRecord) -> RunCost | None:
    """The run's timings, or None when it is not finished."""
    path = run.run_dir / "run.json"
    if not run.done or not path.is_file():
        return None
    info = read_json(path)
    tasks = {}
    for task in run.results:
        marker = run.run_dir / "results" / f"{task}.done.json"
        if marker.is_file():
            tasks[task] = float(read_json(marker).get("seconds") or 0.0)
    load = info.get("load_average")
    return RunCost(
        seconds=float(info.get("seconds") or 0.0),
        train_seconds=float(info.get("train_seconds") or 0.0),
        task_seconds=tasks,
        cpu_seconds=None if info.get("cpu_seconds") is None else float(info["cpu_seconds"]),
        load=float(load[0]) if load else None,
        precisions=frozenset(str(r.model["precision"]) for r in run.results.values() if r.model.get("precision")),
        machine=(info.get("environment") or {}).get("cpu"),
        started=_when(info.get("started")),
        finished=_when(info.get("finished")),
    )


def _when(stamp: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(stamp) if stamp else None


def cost_section(study: Study) -> list[Block]:
    """Per arm, the mean minutes its finished runs spent training and on each task, the share of the machine they
    had, and the study's compute and wall span: the cost of the numbers above, read from the runs' own records."""
    environment = study.meta.get("environment") or {}
    cores = environment.get("cpu_count")
    costs = {key: [c for c in map(run_cost, runs) if c is not None] for key, runs in study.groups.items()}
    costs = {key: group for key, group in costs.items() if group}
    if not costs:
        return []
    rows = []
    for (backbone, label), group in costs.items():
        shares = [
            c.cpu_seconds / (c.seconds * cores) for c in group if c.cpu_seconds is not None and c.seconds and cores
        ]
        loads = [c.load for c in group if c.load is not None]
        rows.append(
            [
                f"{backbone} / {label}",
                str(len(group)),
                ", ".join(sorted(frozenset().union(*(c.precisions for c in group)))) or "—",
                fmt(_mean_minutes(c.train_seconds for c in group)),
                *(fmt(_mean_minutes(c.task_seconds.get(task) for c in group)) for task in study.tasks),
                fmt(_mean_minutes(c.seconds for c in group)),
                fmt(100 * sum(shares) / len(shares), 0) + " %" if shares else "—",
                fmt(sum(loads) / len(loads)) if loads else "—",
            ]
        )
    every = [c for group in costs.values() for c in group]
    starts = [c.started for c in every if c.started is not None]
    ends = [c.finished for c in every if c.finished is not None]
    span = (
        f"; first start {min(starts):%Y-%m-%d %H:%M} to last finish {max(ends):%Y-%m-%d %H:%M} UTC"
        if starts and ends
        else ""
    )
    machine = ", ".join(
        str(part)
        for part in (
            _machines(every, environment),
            f"{cores} cores" if cores else None,
            f"torch {environment['torch_threads']} threads" if environment.get("torch_threads") else None,
            environment.get("device") if environment.get("device") != "cpu" else None,
        )
        if part
    )
    return [
        Heading(2, "What it cost"),
        Paragraph(
            f"Measured on {machine}. Per arm, the precision its evaluations ran in (a study run in parts on "
            "machines with and without native bf16 shows both), the mean over its finished runs of the minutes of "
            "each stage (a run "
            "resumed after a kill counts its last attempt only), the share of the machine's cores its process kept "
            "busy (below 100 % when other work competed or a stage waited on disk), and the 1-minute load average "
            f"when it ended. The finished runs took {sum(c.seconds for c in every) / 3600:.1f} hours of wall time in "
            f"all{span} (run in parts)."
        ),
        TableBlock(
            [
                "arm",
                "runs",
                "precision",
                "train (min)",
                *(f"{task} (min)" for task in study.tasks),
                "run (min)",
                "CPU use",
                "load",
            ],
            rows,
        ),
    ]


def _machines(costs: list[RunCost], environment: dict[str, Any]) -> str:
    """The CPUs the runs ran on, with how many runs each (a study run in parts may change machines between parts);
    study.json's, the last part's, where no run recorded its own."""
    recorded = Counter(c.machine for c in costs if c.machine)
    if not recorded:
        return str(environment.get("cpu") or "CPU model not recorded")
    machines = [f"{cpu} ({_count(n, 'run')})" for cpu, n in recorded.most_common()]
    if missing := sum(c.machine is None for c in costs):
        machines.append(f"not recorded ({_count(missing, 'run')} from before the runner recorded it per run)")
    return ", ".join(machines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _mean_minutes(seconds: Iterable[float | None]) -> float | None:
    values = [s for s in seconds if s is not None]
    return sum(values) / len(values) / 60 if values else None


def reproduction(study: Study, command: str) -> list[Block]:
    commands = [*study.meta.get("commands", []), shlex.join(["polyret", "report", str(study.study_dir)]), command]
    whole = shlex.join(["polyret", "compare", str(study.meta.get("config_path", "CONFIG")), "--study-dir", "STUDY"])
    return [
        Heading(2, "How to reproduce"),
        Paragraph(
            f"One command runs the whole study: `{whole}` (it resumes where it stopped when run again, so it may be "
            "run in parts). This document came from the commands below, in order, then the report and this document:"
        ),
        CodeBlock("\n".join(commands), "bash"),
    ]


def readme_section(study: Study, claims: ClaimsTable, link: str) -> str:
    """The README's findings section: a link to the document and the first claim's rows of the claims table."""
    first = claims.specs[0]
    done = sum(run.done for run in study.runs)
    blocks: list[Block] = [
        Heading(2, README_HEADING),
        Paragraph(
            f"The {study.name} study ({done} of {len(study.runs)} runs finished) is polyret's answer at the largest "
            f"budget a CPU allows; the claims, per-language tables, figures and every limit are in [{link}]({link}). "
            f"Its headline claim, {first.id} ({first.statement}), is **{claims.support[first.id]}**:"
        ),
        claims_table(claims, [first.id]),
    ]
    return render_markdown(blocks, Path(".")).strip()


def replace_section(text: str, section: str) -> str:
    """``text`` with the part between :data:`START` and :data:`END` replaced by ``section`` (the markers and
    everything else kept byte for byte); without markers, the marked section goes before the second ``## `` heading
    (after the set-up section), else at the end."""
    marked = f"{START}\n{section}\n{END}"
    if START in text and END in text and text.index(START) < text.index(END):
        return text[: text.index(START)] + marked + text[text.index(END) + len(END) :]
    if START in text or END in text:
        raise ConfigError(f"the README has one of {START} and {END} but not both in order: fix or remove it")
    headings = [match.start() for match in re.finditer(r"^## ", text, flags=re.M)]
    if len(headings) < 2:
        return text.rstrip("\n") + "\n\n" + marked + "\n"
    return text[: headings[1]] + marked + "\n\n" + text[headings[1] :]
