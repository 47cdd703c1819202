"""Model cards for trained models: sentence-transformers' own card plus polyret's training facts and results.

``SentenceTransformer.save`` writes a ``README.md`` card (architecture, usage, training details) that cannot know
a local base model or the languages; :func:`write_model_card` adds (or replaces, between markers) a section with
what the run directory records (base model, method, languages, data, precision, steps, losses) and, when given,
the main scores, the overall metrics and the low-resource group of every evaluated task, and fills the card's
``base_model`` / ``language`` metadata. Without a card it writes a minimal one with the Hugging Face metadata header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from polyret import __version__
from polyret.data.languages import get_language
from polyret.encode.embedded import EMBEDDED_MODELS
from polyret.errors import PolyretError, UnknownNameError
from polyret.eval.results import TaskResult, is_count, readable_options
from polyret.io import atomic_write, read_json
from polyret.train.runs import CONFIG_FILE, RUN_FILE, TRAINING_INFO

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


@dataclass(frozen=True)
class TrainingFacts:
    """What a run directory records about how its model was trained (None: not recorded)."""

    base_model: str | None = None
    #: the Hugging Face id behind an embedded base model (its ``base_model`` metadata)
    upstream: str | None = None
    method: str | None = None
    alpha: float | None = None
    languages: list[str] = field(default_factory=list)
    data: dict[str, int | None] = field(default_factory=dict)
    precision: str | None = None
    steps: int | None = None
    batch_size: int | None = None
    seed: int | None = None
    train_loss: float | None = None
    best_eval_loss: float | None = None

    def rows(self) -> list[tuple[str, str]]:
        base = self.base_model and (
            f"`{self.base_model}`" + (f" (polyret's embedded copy of `{self.upstream}`)" if self.upstream else "")
        )
        method = self.method and self.method + (f" (α = {self.alpha:g})" if self.alpha is not None else "")
        data = ", ".join(f"{name} ({count} items)" if count else name for name, count in self.data.items())
        steps = self.steps and f"{self.steps}" + (f" of batch {self.batch_size}" if self.batch_size else "")
        rows = [
            ("base model", base),
            ("method", method),
            ("languages", ", ".join(self.languages)),
            ("training data", data),
            ("precision", self.precision),
            ("steps", steps),
            ("seed", None if self.seed is None else str(self.seed)),
            ("final training loss", None if self.train_loss is None else f"{self.train_loss:.4f}"),
            ("best validation loss", None if self.best_eval_loss is None else f"{self.best_eval_loss:.4f}"),
        ]
        return [(name, value) for name, value in rows if value]


def _read_optional(path: Path) -> dict[str, Any]:
    try:
        if path.suffix == ".json":
            payload = read_json(path) if path.is_file() else {}
        else:
            payload = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (PolyretError, OSError, yaml.YAMLError):
        return {}  # a card is a courtesy: an unreadable record leaves its facts out
    return payload if isinstance(payload, dict) else {}


def training_facts(model_dir: str | Path) -> TrainingFacts | None:
    """The facts of the run that wrote ``model_dir`` (its own ``polyret_training.json``, the run directory's
    ``config.yaml`` and ``run.json``); None when none of them is there."""
    directory = Path(model_dir)
    record, config = _read_optional(directory / TRAINING_INFO), _read_optional(directory.parent / CONFIG_FILE)
    run = _read_optional(directory.parent / RUN_FILE)
    if not (record or config or run):
        return None
    model = config.get("model")
    base = model.get("name") if isinstance(model, dict) else model if isinstance(model, str) else None
    base = base or record.get("base_model") or run.get("model")
    embedded = EMBEDDED_MODELS.get(base) if isinstance(base, str) else None
    datasets = run.get("datasets") or {name: None for name in record.get("datasets") or []}
    method = record.get("method") or config.get("method") or run.get("method")
    alpha = record.get("alpha", config.get("alpha") if method == "hybrid" else None)
    return TrainingFacts(
        base_model=base,
        upstream=embedded.upstream if embedded else None,
        method=method,
        alpha=alpha,
        languages=list(record.get("languages") or run.get("languages") or config.get("languages") or []),
        data=dict(datasets),
        precision=record.get("precision") or config.get("precision"),  # the resolved one ("auto" → fp32 or bf16)
        steps=run.get("global_step"),
        batch_size=run.get("global_batch_size") or config.get("batch_size"),
        seed=record.get("seed", config.get("seed")),
        train_loss=run.get("train_loss"),
        best_eval_loss=run.get("best_eval_loss"),
    )


def training_section(facts: TrainingFacts) -> list[str]:
    return ["## polyret training", "", "| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in facts.rows())]


_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)


def _with_metadata(text: str, facts: TrainingFacts | None, languages: list[str]) -> str:
    """``text`` with ``base_model`` and ``language`` in its metadata header and in sentence-transformers' (commented
    out) "Unknown" lines; unchanged when there is nothing to add."""
    base = facts and (facts.upstream or facts.base_model)
    if base and (base.startswith((".", "/", "~")) or Path(base).exists()):
        base = None  # a local folder is no Hub id; the polyret section names it
    if not (base or languages):
        return text
    if base:
        text = re.sub(r"^<!-- - \*\*Base model:\*\* .* -->$", f"- **Base model:** {base}", text, flags=re.MULTILINE)
    if languages:
        text = re.sub(r"^<!-- - \*\*Language:\*\* .* -->$", f"- **Language:** {', '.join(languages)}", text, flags=re.M)
    match = _FRONT_MATTER.match(text)
    header = (yaml.safe_load(match.group(1)) if match else None) or {}
    if not isinstance(header, dict):
        return text
    header.update({"base_model": base} if base else {})
    header.update({"language": languages} if languages else {})
    dumped = yaml.safe_dump(header, allow_unicode=True, sort_keys=False)
    return f"---\n{dumped}---\n" + (text[match.end() :] if match else "\n" + text)


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


def results_section(results: Sequence[TaskResult], run_name: str | None = None) -> list[str]:
    """The Markdown lines of one table of main scores, then each task's overall metrics and options."""
    lines = ["## polyret evaluation", ""]
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
        if result.model.get("precision"):  # results written before precision was recorded were all fp32
            backend = result.model.get("backend") or "torch"
            name = backend.get("name") if isinstance(backend, dict) else backend
            lines += ["", f"{result.task} encoded in {result.model['precision']} on the {name} backend"]
        if result.config:
            lines += ["", f"{result.task} options:", "", *(f"- {line}" for line in readable_options(result.config))]
    return lines


def write_model_card(model_dir: str | Path, results: Sequence[TaskResult] = (), *, run_name: str | None = None) -> Path:
    """Add polyret's training facts and results to ``model_dir/README.md`` (replacing an earlier polyret section)
    and its metadata header; return its path."""
    directory = Path(model_dir)
    card = directory / "README.md"
    facts = training_facts(directory)
    text = card.read_text(encoding="utf-8") if card.is_file() else _minimal_card(directory, results)
    text = _with_metadata(text, facts, facts.languages if facts else [])
    body = [*(training_section(facts) if facts else []), *([""] if facts and results else [])]
    body += results_section(results, run_name) if results else []
    section = "\n".join([START, *body, "", END])
    if START in text and END in text:
        before, _, rest = text.partition(START)
        _, _, after = rest.partition(END)
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with atomic_write(card) as handle:
        handle.write(text)
    return card
