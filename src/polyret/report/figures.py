"""Report figures (matplotlib's Agg canvas, no pyplot state): each saved as PNG (embedded in the HTML) and SVG.

Every function takes plain data, draws one figure and returns :class:`FigureFiles`; the report decides
what to draw. Low-resource languages are highlighted the same way everywhere: a shaded band behind their
rows/points and red tick labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from polyret.io import atomic_write
from polyret.report.tables import Stat

LOW_COLOR = "#c0392b"
LOW_SHADE = "#fdecea"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#d62728")
ABSENT_GIB = 0.05  # where languages absent from CC-100 are drawn on the log axis


@dataclass(frozen=True)
class FigureFiles:
    title: str
    png: Path
    svg: Path
    caption: str = ""


def _save(figure: Figure, stem: Path, title: str, caption: str) -> FigureFiles:
    stem.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    with atomic_write(png, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    with atomic_write(svg, "wb") as handle:
        figure.savefig(handle, format="svg")
    return FigureFiles(title=title, png=png, svg=svg, caption=caption)


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def _legend_columns(labels: Sequence[str], width_in: float) -> int:
    """As many legend columns as fit across the figure (about 0.075 in per character plus the handle)."""
    widest = max((len(label) for label in labels), default=10)
    return max(1, min(len(labels), int(width_in // (0.6 + 0.075 * widest))))


@dataclass(frozen=True)
class ForestRow:
    """One row of a forest plot: a language, or a group of languages with its own (macro) estimate."""

    label: str
    low_resource: bool
    group: bool = False


#: (Δ, CI low, CI high, tested): tested=False draws a hollow marker (e.g. fewer seeds than a verdict needs)
Interval = tuple[float, float, float, bool]


def forest(
    rows: Sequence[ForestRow],
    series: Mapping[str, Mapping[str, Interval]],
    *,
    title: str,
    xlabel: str,
    stem: Path,
    caption: str = "",
) -> FigureFiles:
    """Δ against a reference with its 95% CI: one row per language or group (top to bottom), one marker per series
    (method), a line at 0. Shows differences of a fraction of a point that bars from 0 hide."""
    height_in = min(16.0, max(3.0, 1.2 + 0.22 * len(rows) * max(1, len(series)) ** 0.5))
    figure = Figure(figsize=(7.5, height_in), layout="constrained")
    axes = figure.add_subplot()
    y = np.arange(len(rows))[::-1].astype(float)
    step = 0.7 / max(1, len(series))
    for i, row in enumerate(rows):
        if row.low_resource:
            axes.axhspan(y[i] - 0.5, y[i] + 0.5, color=LOW_SHADE, zorder=0)
    for j, (label, intervals) in enumerate(series.items()):
        offset = 0.35 - step * (j + 0.5)
        for i, row in enumerate(rows):
            if row.label not in intervals:
                continue
            diff, low, high, tested = intervals[row.label]
            axes.errorbar(
                diff,
                y[i] + offset,
                xerr=[[diff - low], [high - diff]],
                fmt=MARKERS[j % len(MARKERS)],
                color=_color(j),
                markerfacecolor=_color(j) if tested else "white",
                markersize=7 if row.group else 5,
                capsize=2,
                label=label if i == next(k for k, r in enumerate(rows) if r.label in intervals) else None,
                zorder=3,
            )
    axes.axvline(0.0, color="#333333", linewidth=1, zorder=2)
    axes.set_yticks(y, [row.label for row in rows])
    for tick, row in zip(axes.get_yticklabels(), rows, strict=True):
        if row.low_resource:
            tick.set_color(LOW_COLOR)
        if row.group:
            tick.set_fontweight("bold")
    axes.set_ylim(-0.6, len(rows) - 0.4)
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3, zorder=1)
    figure.legend(fontsize=8, ncol=_legend_columns(list(series), 7.5), loc="outside lower center", frameon=False)
    default = (
        "Δ against the reference with its 95% CI (two-level bootstrap over seeds and items); bold: a group's "
        "macro estimate (each language weighs the same); shaded, red labels: low-resource languages (CC-100 < "
        "10 GiB); hollow markers: an arm has fewer seeds than a verdict needs."
    )
    return _save(figure, stem, title, caption or default)


def alpha_sweep(
    curves: Mapping[str, Sequence[tuple[float, Stat]]], *, title: str, ylabel: str, stem: Path, caption: str = ""
) -> FigureFiles:
    """One line per backbone: the metric against α (X-Y is α = 0, X-X-mono is α = 1), std as error bars."""
    figure = Figure(figsize=(6.0, 4.0), layout="constrained")
    axes = figure.add_subplot()
    for j, (label, points) in enumerate(curves.items()):
        ordered = sorted(points, key=lambda p: p[0])
        xs = [p[0] for p in ordered]
        ys = [p[1].mean for p in ordered]
        errors = [p[1].std or 0.0 for p in ordered]
        axes.errorbar(xs, ys, yerr=errors if any(errors) else None, marker="o", label=label, color=_color(j), capsize=3)
    axes.set_xlim(-0.05, 1.05)
    axes.set_xlabel("α (share of X-X-mono batches; 0 = X-Y, 1 = mono)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, stem, title, caption)


def accuracy_vs_cc100(
    series: Mapping[str, Mapping[str, float]],
    sizes: Mapping[str, float | None],
    *,
    title: str,
    ylabel: str,
    stem: Path,
    caption: str = "",
) -> FigureFiles:
    """Scatter of a per-language score against CC-100 size (log x); absent languages drawn at the left edge."""
    figure = Figure(figsize=(7.0, 4.4), layout="constrained")
    axes = figure.add_subplot()
    axes.axvspan(ABSENT_GIB * 0.7, 10.0, color=LOW_SHADE, zorder=0, label="low-resource (< 10 GiB)")
    for j, (label, values) in enumerate(series.items()):
        langs = [lang for lang in values if lang in sizes]
        xs = [sizes[lang] if sizes[lang] is not None else ABSENT_GIB for lang in langs]
        ys = [values[lang] for lang in langs]
        axes.scatter(xs, ys, label=label, color=_color(j), marker=MARKERS[j % len(MARKERS)], zorder=3, s=26, alpha=0.8)
        if j == 0:
            for lang, x_value, y_value in zip(langs, xs, ys, strict=True):
                axes.annotate(
                    lang,
                    (x_value, y_value),
                    fontsize=7,
                    xytext=(3, 2),
                    textcoords="offset points",
                    color=LOW_COLOR if (sizes[lang] is None or sizes[lang] < 10) else "#333333",
                )
    axes.set_xscale("log")
    axes.set_xlabel("CC-100 size (GiB, log scale; absent languages at the left edge)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.legend(
        fontsize=8,
        ncol=_legend_columns(["low-resource (< 10 GiB)", *series], 7.0),
        loc="outside lower center",
        frameon=False,
    )
    return _save(figure, stem, title, caption)
