"""The study report: ``report.md`` and a self-contained ``report.html`` (inline CSS, base64 PNG figures).

:func:`write_report` reads a study directory (see :mod:`polyret.study.runner`), builds one document —
banners, headline table, significance tests against the reference method, per-language tables, figures,
published numbers, and how it was produced (:mod:`polyret.report.sections`) — and renders it twice, as Markdown and
as HTML, from the same blocks (:mod:`polyret.report.blocks`). Figures are also written as SVG and PNG under
``figures/``; long per-language tables as CSV under ``tables/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polyret.io import atomic_write
from polyret.report.blocks import FigureBlock, render_html, render_markdown
from polyret.report.comparisons import PairedTests
from polyret.report.sections import Settings, build_report
from polyret.report.significance import N_RESAMPLES, Correction
from polyret.report.tables import load_study


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    figures: list[Path]


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
    blocks = build_report(study, Settings(PairedTests(n_resamples, seed, correction), draw_figures=figures))
    root = study.study_dir
    markdown = root / "report.md"
    html_path = root / "report.html"
    with atomic_write(markdown) as handle:
        handle.write(render_markdown(blocks, root))
    with atomic_write(html_path) as handle:
        handle.write(render_html(blocks, f"polyret study report: {study.name}", root))
    paths = [path for block in blocks if isinstance(block, FigureBlock) for path in (block.files.png, block.files.svg)]
    return ReportFiles(markdown=markdown, html=html_path, figures=paths)
