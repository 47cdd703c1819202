"""The report's third rendering, ``report.tex``: the same blocks as report.md and report.html, as LaTeX.

Tables are booktabs ``tabular`` environments written by pandas' ``DataFrame.to_latex`` (cells escaped here first,
so inline ``code`` and **bold** become ``\\texttt`` and ``\\textbf``); each sits in a ``table`` float with its
caption and notes, ready to copy into a paper. Figures include the PNG beside the report. Symbols the report uses
(±, α, ×, ↓, …) map to LaTeX commands, so the document compiles with pdflatex; text in other scripts needs xelatex
or lualatex.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from polyret.report.blocks import Banner, Block, CodeBlock, FigureBlock, Heading, Paragraph, TableBlock

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}
_SYMBOLS = {
    "±": r"$\pm$",
    "α": r"$\alpha$",
    "β": r"$\beta$",
    "τ": r"$\tau$",
    "×": r"$\times$",
    "↓": r"$\downarrow$",
    "↑": r"$\uparrow$",
    "→": r"$\rightarrow$",
    "←": r"$\leftarrow$",
    "↔": r"$\leftrightarrow$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "≈": r"$\approx$",
    "≠": r"$\neq$",
    "−": r"$-$",
    "—": "---",
    "–": "--",
    "…": r"\ldots{}",
    "✓": r"\checkmark{}",
    "Δ": r"$\Delta$",
    "Σ": r"$\Sigma$",
    "∩": r"$\cap$",
    "·": r"$\cdot$",
    "▲": r"$\blacktriangle$",
    "▼": r"$\blacktriangledown$",
    "†": r"\textdagger{}",
    "§": r"\S{}",
    "|": r"\textbar{}",
}
_ESCAPES = str.maketrans({**_SPECIAL, **_SYMBOLS})
_SPANS = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*")
_SECTIONS = {1: "section*", 2: "section", 3: "subsection", 4: "subsubsection"}


def escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped and the report's symbols as LaTeX commands."""
    return text.translate(_ESCAPES)


def inline(text: str) -> str:
    """Escaped ``text`` with the report's ``code`` and **bold** spans as ``\\texttt`` and ``\\textbf``; one line."""
    text = " ".join(text.split("\n"))
    out, position = [], 0
    for match in _SPANS.finditer(text):
        out.append(escape(text[position : match.start()]))
        code, bold = match.groups()
        out.append(rf"\texttt{{{escape(code)}}}" if code is not None else rf"\textbf{{{escape(bold)}}}")
        position = match.end()
    out.append(escape(text[position:]))
    return "".join(out)


def _tex_heading(block: Heading, root: Path) -> list[str]:
    return [rf"\{_SECTIONS.get(block.level, 'paragraph')}{{{inline(block.text)}}}"]


def _tex_paragraph(block: Paragraph, root: Path) -> list[str]:
    return [inline(block.text)]


def _tex_banner(block: Banner, root: Path) -> list[str]:
    label = "Warning" if block.kind == "warning" else "Note"
    return [rf"\noindent\fbox{{\parbox{{\dimexpr\linewidth-2\fboxsep}}{{\textbf{{{label}:}} {inline(block.text)}}}}}"]


def tabular(block: TableBlock) -> str:
    """The table's rows as one booktabs ``tabular`` (group rows in bold), via pandas."""
    bold = [cls == "group" for cls in block.row_classes or [""] * len(block.rows)]
    cells = [
        [rf"\textbf{{{inline(c)}}}" if strong and c else inline(c) for c in row]
        for row, strong in zip(block.rows, bold, strict=True)
    ]
    frame = pd.DataFrame(cells, columns=[inline(h) for h in block.header])
    return frame.to_latex(index=False, escape=False, column_format="l" * len(block.header))


def _tex_table(block: TableBlock, root: Path) -> list[str]:
    if not block.rows:
        return [r"(no rows)"]
    caption = [rf"\caption{{{inline(block.caption)}}}"] if block.caption else []
    notes = [rf"\par\smallskip{{\footnotesize {inline(note)}}}" for note in block.notes]
    body = [
        r"\begin{table}[htbp]",
        r"\centering",
        *caption,
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
    ]
    return [*body, tabular(block).rstrip("\n") + "}", *notes, r"\end{table}"]


def _tex_figure(block: FigureBlock, root: Path) -> list[str]:
    png = block.files.png.relative_to(root).as_posix()
    caption = inline(f"{block.files.title}. {block.files.caption}")
    return [
        r"\begin{figure}[htbp]",
        r"\centering",
        rf"\includegraphics[width=\linewidth]{{{png}}}",
        rf"\caption{{{caption}}}",
        r"\end{figure}",
    ]


def _tex_code(block: CodeBlock, root: Path) -> list[str]:
    return [r"\begin{verbatim}", block.text, r"\end{verbatim}"]


LATEX: dict[type, Callable[[Any, Path], list[str]]] = {
    Heading: _tex_heading,
    Paragraph: _tex_paragraph,
    Banner: _tex_banner,
    TableBlock: _tex_table,
    FigureBlock: _tex_figure,
    CodeBlock: _tex_code,
}

PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[T1]{fontenc}
\usepackage[utf8]{inputenc}
\usepackage[margin=2cm]{geometry}
\usepackage{booktabs}
\usepackage{graphicx}
\usepackage{amssymb}
\usepackage[hidelinks]{hyperref}
"""


def render_latex(blocks: Sequence[Block], title: str, root: Path) -> str:
    """The report as one LaTeX document; figure paths relative to ``root`` (the study directory)."""
    # lines of one block stay together: a blank line inside a table's \resizebox argument would end it
    body = ["\n".join(LATEX[type(block)](block, root)) for block in blocks]
    return (
        PREAMBLE
        + rf"\title{{{inline(title)}}}"
        + "\n\\date{}\n\\begin{document}\n\\maketitle\n\n"
        + "\n\n".join(body)
        + "\n\n\\end{document}\n"
    )
