"""The report as a list of blocks, and its two renderings: Markdown and self-contained HTML.

A report is built once as :data:`Block` values (headings, paragraphs, banners, tables, figures, code) and rendered
twice from the same list; each block type has one small Markdown and one small HTML function, looked up by type.
Text may hold ``code`` and **bold** spans; the HTML escapes everything else.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyret.report.figures import FigureFiles


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
    files: FigureFiles


@dataclass
class CodeBlock:
    text: str
    language: str = ""


Block = Heading | Paragraph | Banner | TableBlock | FigureBlock | CodeBlock


def _row_classes(block: TableBlock) -> list[str]:
    return block.row_classes or [""] * len(block.rows)


# --------------------------------------------------------------------------- Markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_heading(block: Heading, root: Path) -> list[str]:
    return [f"{'#' * block.level} {block.text}\n"]


def _md_paragraph(block: Paragraph, root: Path) -> list[str]:
    return [block.text + "\n"]


def _md_banner(block: Banner, root: Path) -> list[str]:
    label = "WARNING" if block.kind == "warning" else "NOTE"
    return [f"> **{label}:** {block.text}\n"]


def _md_table(block: TableBlock, root: Path) -> list[str]:
    out = [f"*{block.caption}*\n"] if block.caption else []
    if not block.rows:
        return [*out, "(no rows)\n"]
    lines = [
        "| " + " | ".join(_md_cell(h) for h in block.header) + " |",
        "|" + "|".join("---" for _ in block.header) + "|",
    ]
    for row, cls in zip(block.rows, _row_classes(block), strict=True):
        cells = [_md_cell(c) for c in row]
        if cls == "group":
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return [*out, "\n".join(lines) + "\n", *(f"{note}\n" for note in block.notes)]


def _md_figure(block: FigureBlock, root: Path) -> list[str]:
    png, svg = block.files.png.relative_to(root), block.files.svg.relative_to(root)
    return [f"![{block.files.title}]({png})\n\n*{block.files.title}.* {block.files.caption} ([SVG]({svg}))\n"]


def _md_code(block: CodeBlock, root: Path) -> list[str]:
    return [f"```{block.language}\n{block.text}\n```\n"]


_MARKDOWN: dict[type, Callable[[Any, Path], list[str]]] = {
    Heading: _md_heading,
    Paragraph: _md_paragraph,
    Banner: _md_banner,
    TableBlock: _md_table,
    FigureBlock: _md_figure,
    CodeBlock: _md_code,
}


def render_markdown(blocks: Sequence[Block], root: Path) -> str:
    """The report as Markdown; figure and table paths relative to ``root`` (the study directory)."""
    return "\n".join(piece for block in blocks for piece in _MARKDOWN[type(block)](block, root))


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


@dataclass(frozen=True)
class _Page:
    """What an HTML block needs beside itself: the study directory, the table of contents, its position."""

    root: Path
    toc: list[Heading]
    index: int


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def _html_heading(block: Heading, page: _Page) -> list[str]:
    out = [f'<h{block.level} id="{block.anchor}">{html.escape(block.text)}</h{block.level}>']
    if block.level == 1 and page.toc:
        out.append("<nav>" + "".join(f'<a href="#{h.anchor}">{html.escape(h.text)}</a>' for h in page.toc) + "</nav>")
    return out


def _html_paragraph(block: Paragraph, page: _Page) -> list[str]:
    return [f"<p>{_inline(block.text)}</p>"]


def _html_banner(block: Banner, page: _Page) -> list[str]:
    label = "Warning" if block.kind == "warning" else "Note"
    return [f'<div class="banner {block.kind}" role="note"><strong>{label}:</strong> {_inline(block.text)}</div>']


def _html_table(block: TableBlock, page: _Page) -> list[str]:
    parts = ['<div class="tablewrap"><table>']
    if block.caption:
        parts.append(f"<caption>{html.escape(block.caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in block.header) + "</tr></thead>")
    parts.append("<tbody>")
    for row, cls in zip(block.rows, _row_classes(block), strict=True):
        attr = f' class="{cls}"' if cls else ""
        parts.append(f"<tr{attr}>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
    if not block.rows:
        parts.append(f'<tr><td colspan="{len(block.header)}">(no rows)</td></tr>')
    parts.append("</tbody></table></div>")
    parts.extend(f'<p class="note">{_inline(note)}</p>' for note in block.notes)
    return ["".join(parts)]


def _html_figure(block: FigureBlock, page: _Page) -> list[str]:
    data = base64.b64encode(block.files.png.read_bytes()).decode("ascii")
    svg = block.files.svg.relative_to(page.root)
    title = html.escape(block.files.title)
    return [
        f'<figure id="figure-{page.index}"><img alt="{title}" src="data:image/png;base64,{data}"><figcaption>'
        f"<strong>{title}.</strong> {_inline(block.files.caption)} (SVG on disk: <code>{html.escape(str(svg))}</code>)"
        "</figcaption></figure>"
    ]


def _html_code(block: CodeBlock, page: _Page) -> list[str]:
    return [f"<pre><code>{html.escape(block.text)}</code></pre>"]


_HTML: dict[type, Callable[[Any, _Page], list[str]]] = {
    Heading: _html_heading,
    Paragraph: _html_paragraph,
    Banner: _html_banner,
    TableBlock: _html_table,
    FigureBlock: _html_figure,
    CodeBlock: _html_code,
}


def render_html(blocks: Sequence[Block], title: str, root: Path) -> str:
    """The report as one HTML page: inline CSS, figures embedded as base64 PNG, a table of contents."""
    toc = [b for b in blocks if isinstance(b, Heading) and b.level == 2]
    body = [piece for i, block in enumerate(blocks) for piece in _HTML[type(block)](block, _Page(root, toc, i))]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )
