"""report.tex: the report's blocks as LaTeX, with booktabs tables that match report.md's row for row."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import get_args

import pytest

from helpers.synthetic_study import CallLog, FakeEvaluator, FakeTrainer, write_study_config
from polyret.report.blocks import Block, TableBlock
from polyret.report.latex import LATEX, escape, inline, render_latex, tabular
from polyret.report.render import write_report
from polyret.study.runner import run_study


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("latex")
    calls = CallLog(root / "calls.jsonl")
    config = write_study_config(root / "study.yaml")
    run_study(config, root / "study", trainer=FakeTrainer(calls), evaluator=FakeEvaluator(calls), show_progress=False)
    return write_report(root / "study", n_resamples=200, figures=False)


def _markdown_tables(text: str) -> list[int]:
    """Row counts (without header) of every Markdown table, in order."""
    counts, rows = [], None
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            rows = -2 if rows is None else rows  # header and separator
            rows += 1
        elif rows is not None:
            counts.append(rows)
            rows = None
    return counts


def _latex_tables(text: str) -> list[int]:
    bodies = re.findall(
        r"\\begin\{tabular\}\{l+\}\n\\toprule\n.*?\n\\midrule\n(.*?)\\bottomrule\n\\end\{tabular\}", text, re.S
    )
    return [len([line for line in body.splitlines() if line.endswith(r"\\")]) for body in bodies]


def test_report_tex_has_every_table_of_report_md(written):
    tex = written.latex.read_text(encoding="utf-8")
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == tex.count(r"\toprule") > 3
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") and tex.count("{") == tex.count("}")
    markdown = _markdown_tables(written.markdown.read_text(encoding="utf-8"))
    assert _latex_tables(tex) == markdown and sum(markdown) > 20
    assert "task options: " in tex and "…" not in tex  # options as key: value lines, whole
    for body in re.findall(r"\\midrule\n(.*?)\\bottomrule", tex, re.S):  # specials escaped in every cell
        for row in body.splitlines():
            for cell in row.removesuffix(r"\\").split(" & "):
                assert not re.search(r"(?<!\\)[%#_&]", cell), cell


def test_special_characters_and_spans_are_escaped():
    assert escape("a_b & 50% #1 $x {y} ~ ^ \\") == (
        r"a\_b \& 50\% \#1 \$x \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{}"
    )
    assert escape("0.5 ± 0.1, α = 0.5, ×100 ↓") == r"0.5 $\pm$ 0.1, $\alpha$ = 0.5, $\times$100 $\downarrow$"
    assert inline("see `mul.map_cut` and **p < 0.05**") == r"see \texttt{mul.map\_cut} and \textbf{p \textless{} 0.05}"
    table = tabular(TableBlock(["task", "a|b"], [["x_1", "50%"], ["group", ""]], row_classes=["", "group"]))
    assert r"x\_1 & 50\% \\" in table and r"\textbf{group} &  \\" in table and r"task & a\textbar{}b \\" in table


def test_every_block_type_has_a_latex_renderer(tmp_path: Path):
    assert set(LATEX) == set(get_args(Block))
    assert r"\title{x\_y}" in render_latex([], "x_y", tmp_path)


def test_report_tex_compiles_with_pdflatex_when_installed(written):
    """Every symbol the report uses must be one pdflatex knows (apt-get install texlive-latex-recommended)."""
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-recommended)")
    folder = written.latex.parent
    done = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "-output-directory", str(folder), written.latex.name],
        cwd=folder,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:].decode(errors="replace")
    assert (folder / "report.pdf").stat().st_size > 0
