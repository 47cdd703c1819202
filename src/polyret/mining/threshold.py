"""``polyret mine --threshold auto``: tune the margin threshold on a small bitext the mining never sees.

The fixed default 1.06 is LASER/CRISS's ratio-margin threshold; other models' margins sit elsewhere (e5's near
1.0–1.02), so a fixed number keeps far too few or too many pairs. Auto-tuning follows BUCC (PROTOCOLS §3.3 step 4):
mine a dev bitext with the same model and settings but no threshold, sort the one-to-one candidates by margin, pick
the cut-off that maximises F1 against the dev gold and take the midpoint between it and the next score
(:func:`polyret.mining.margin.best_f1_threshold`, the function BUCC's evaluation uses).

The dev bitext comes from Tatoeba pairs of other languages (:data:`DEV_LANGUAGES` by default; choose languages that
are not being mined). Like a comparable corpus, it is not all parallel: per language, ``lines`` translation pairs
sit among ``lines`` source sentences and ``lines`` English sentences that have no translation on the other side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polyret.data.languages import language_key
from polyret.data.tatoeba import read_tatoeba_pair
from polyret.encode.encoder import load_encoder
from polyret.errors import DataError
from polyret.io import write_json
from polyret.mining.margin import (
    MineSummary,
    MiningOptions,
    SideEncoding,
    best_f1_threshold,
    dedupe,
    mine_files,
)

if TYPE_CHECKING:
    from polyret.encode.base import Encoder

DEV_LANGUAGES: tuple[str, ...] = ("af", "eu", "tl")
DEV_LINES = 100


@dataclass(frozen=True)
class DevBitext:
    """One language's dev pool: source and English sides and the gold (source, English) text pairs."""

    lang: str
    src: list[str]
    tgt: list[str]
    gold: set[tuple[str, str]]


@dataclass(frozen=True)
class ThresholdTuning:
    """The tuned threshold and how it was found (written beside the mined pairs)."""

    threshold: float
    dev_f1: float
    languages: tuple[str, ...]
    gold_pairs: int
    candidates: int
    lines_per_language: int
    k: int
    margin: str
    rule: str = "BUCC (PROTOCOLS §3.3 step 4): F1-best cut-off on dev, midpoint to the next score"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DevSet:
    """Where a threshold is tuned: ``lines`` Tatoeba pairs per language of ``languages`` (see :func:`dev_bitext`),
    read below ``root`` (default: the data folder)."""

    languages: Sequence[str] = DEV_LANGUAGES
    lines: int = DEV_LINES
    root: str | Path | None = None


def dev_bitext(lang: str, lines: int = DEV_LINES, root: str | Path | None = None) -> DevBitext:
    """Tatoeba ``lang``: lines ``[0, n)`` as pairs, source lines ``[n, 2n)`` and English lines ``[2n, 3n)`` unpaired
    (``n`` = ``lines``, or a third of a smaller file)."""
    pair = read_tatoeba_pair(lang, root)
    n = min(lines, len(pair) // 3)
    if n < 1:
        raise DataError.at(pair.path, None, f"{len(pair)} lines: too few for a threshold dev bitext")
    gold = {(pair.xx[i], pair.en[i]) for i in range(n)}
    return DevBitext(language_key(lang), pair.xx[: 2 * n], [*pair.en[:n], *pair.en[2 * n : 3 * n]], gold)


def tune_threshold(
    encoder: Encoder,
    options: MiningOptions = MiningOptions(),
    dev: DevSet = DevSet(),
    encoding: SideEncoding = SideEncoding(show_progress=False),
) -> ThresholdTuning:
    """Mine each dev language with ``options`` minus the threshold (and floor), pool the candidates of all languages
    and tune one threshold for F1 (see the module docstring). Both sides carry the query prefix, as in mining."""
    unthresholded = replace(options, threshold=None, min_count=0)
    scores, correct, gold_pairs = [], [], 0
    for bitext in (dev_bitext(lang, dev.lines, dev.root) for lang in dev.languages):
        src, tgt = dedupe(bitext.src), dedupe(bitext.tgt)
        src_vectors, tgt_vectors = (encoding.encode(encoder, side.unique) for side in (src, tgt))
        pairs = unthresholded.mine(src_vectors, tgt_vectors)
        scores.append(pairs.score)
        found = zip(pairs.src_index.tolist(), pairs.tgt_index.tolist(), strict=True)
        correct.append(np.array([(src.unique[i], tgt.unique[j]) in bitext.gold for i, j in found], dtype=bool))
        gold_pairs += len(bitext.gold)
    threshold, f1 = best_f1_threshold(np.concatenate(scores), np.concatenate(correct), gold_pairs)
    return ThresholdTuning(
        threshold=threshold,
        dev_f1=100 * f1,
        languages=tuple(language_key(lang) for lang in dev.languages),
        gold_pairs=gold_pairs,
        candidates=int(sum(len(s) for s in scores)),
        lines_per_language=dev.lines,
        k=options.k,
        margin=options.margin,
    )


def threshold_record(output: str | Path) -> Path:
    """Where ``polyret mine --threshold auto`` records its tuning: ``<output>.threshold.json`` beside the TSV."""
    path = Path(output)
    return path.with_name(f"{path.name}.threshold.json")


def mine_files_tuned(
    model: str | Encoder,
    src: str | Path,
    tgt: str | Path,
    output: str | Path,
    options: MiningOptions = MiningOptions(),
    dev: DevSet = DevSet(),
    *,
    batch_size: int = 32,
    max_length: int | None = None,
    show_progress: bool = True,
) -> tuple[MineSummary, ThresholdTuning]:
    """:func:`~polyret.mining.margin.mine_files` with the threshold tuned first (:func:`tune_threshold`); the tuning
    is written to :func:`threshold_record` (JSON), the TSV keeps its ``score<TAB>src<TAB>tgt`` lines."""
    encoder = load_encoder(model, max_length=max_length) if isinstance(model, str) else model
    tuning = tune_threshold(encoder, options, dev, SideEncoding(batch_size, max_length, show_progress=False))
    summary = mine_files(
        encoder,
        src,
        tgt,
        output,
        replace(options, threshold=tuning.threshold),
        batch_size=batch_size,
        max_length=max_length,
        show_progress=show_progress,
    )
    write_json(threshold_record(output), {**tuning.to_json(), "pairs": summary.pairs})
    return summary, tuning
