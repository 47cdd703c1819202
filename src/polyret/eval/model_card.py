"""Model cards for trained models: sentence-transformers' own card plus polyret's evaluation results.

``SentenceTransformer.save`` writes a ``README.md`` card (architecture, usage, training details);
:func:`write_model_card` adds (or replaces, between markers) a section with the main scores, the overall
metrics and the low-resource group of every evaluated task. Without a card it writes a minimal one with the
Hugging Face metadata header.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from polyret import __version__
from polyret.data.languages import get_language
from polyret.errors import UnknownNameError
from polyret.eval.results import TaskResult, is_count
from polyret.io import atomic_write

START = "<!-- polyret:results:start -->"
END = "<!-- polyret:results:end -->"


def _languages(results: Sequence[TaskResult]) -> list[str]:
    codes: list[str] = []
    for result in results:
        for code in result.languages:
            try:
                language = get_language(code)
            except UnknownNameError:
                continue
            if language.iso1 and language.iso1 not in codes:
                codes.append(language.iso1)
    return sorted(codes)


def _minimal_card(model_dir: Path, results: Sequence[TaskResult]) -> str:
    languages = _languages(results)
    header = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags:",
        "- sentence-transformers",
        "- polyret",
        "- multilingual-retrieval",
    ]
    if languages:
        header += ["language:", *(f"- {code}" for code in languages)]
    header.append("---")
    return "\n".join(
        [*header, "", f"# {model_dir.name}", "", "A multilingual dense retriever trained with polyret.", ""]
    )


def results_section(results: Sequence[TaskResult], run_name: str | None = None) -> str:
    """The Markdown section polyret adds to a card: one table of main scores, then each task's overall metrics."""
    lines = [START, "## polyret evaluation", ""]
    if run_name:
        lines += [
            f"Study run `{run_name}`, evaluated with polyret {__version__}. Scores are ×100 (rank distances in "
            "ranks, lower is better).",
            "",
        ]
    lines += ["| task | main metric | value | low-resource | other |", "|---|---|---|---|---|"]
    for result in results:
        metric = result.main_score.metric
        low = result.aggregates.get("low-resource", {}).get(metric)
        other = result.aggregates.get("other", {}).get(metric)
        lines.append(
            f"| {result.task} | {metric} | {result.main_score.value:.2f} | "
            f"{'—' if low is None else f'{low:.2f}'} | {'—' if other is None else f'{other:.2f}'} |"
        )
    for result in results:
        overall = result.aggregates.get("all") or {}
        if overall:
            shown = ", ".join(
                f"{k} {v:.2f}" for k, v in overall.items() if isinstance(v, int | float) and not is_count(k)
            )
            lines += ["", f"**{result.task}** ({len(result.languages)} languages): {shown}"]
        if result.config:
            lines.append(
                f"\n<sub>{result.task} options: `{json.dumps(result.config, ensure_ascii=False, default=str)}`</sub>"
            )
    lines += ["", END]
    return "\n".join(lines)


def write_model_card(model_dir: str | Path, results: Sequence[TaskResult], *, run_name: str | None = None) -> Path:
    """Add polyret's results to ``model_dir/README.md`` (replacing an earlier polyret section); return its path."""
    directory = Path(model_dir)
    card = directory / "README.md"
    text = card.read_text(encoding="utf-8") if card.is_file() else _minimal_card(directory, results)
    section = results_section(results, run_name)
    if START in text and END in text:
        before, _, rest = text.partition(START)
        _, _, after = rest.partition(END)
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with atomic_write(card) as handle:
        handle.write(text)
    return card
