"""XTREME Tatoeba (PROTOCOLS.md §3.2): top-1 translation retrieval against English, in both directions.

For each language the candidates are the n sentences on the other side of the same file pair, both sides carry the
encoder's query prefix (a symmetric task), the prediction is the exact cosine argmax with ties to the lowest line,
and gold is the identity (the raw files are read, unsorted). Reported per language (x100, with n): ``xx2en.accuracy``
(as MTEB scores it), ``en2xx.accuracy`` (as XTREME's script does) and ``mean.accuracy``; aggregates are macro means
over all, low-resource and other languages. The main score is the mean ``xx2en.accuracy``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from pydantic import Field

from polyret.data.languages import TATOEBA_XTREME36, get_language
from polyret.data.tatoeba import read_tatoeba_pair, tatoeba_dir
from polyret.encode.base import Encoder
from polyret.eval.bitext import TIE_RULE, encode_unique, language_aggregates, score_pair
from polyret.eval.options import TaskOptions
from polyret.eval.results import MainScore, TaskResult, write_result

TASK = "tatoeba"
METRICS = ("xx2en.accuracy", "en2xx.accuracy", "mean.accuracy")


class TatoebaOptions(TaskOptions):
    """The study-config options of :func:`evaluate_tatoeba`."""

    root: Path | None = None
    max_sentences: int | None = Field(None, ge=1)


def evaluate_tatoeba(
    encoder: Encoder,
    languages: Sequence[str] = TATOEBA_XTREME36,
    root: str | Path | None = None,
    output_dir: str | Path | None = None,
    max_sentences: int | None = None,
    batch_size: int = 32,
    show_progress: bool = True,
) -> TaskResult:
    """Score ``encoder`` on Tatoeba for ``languages`` (any codes; default the 36 XTREME ones).

    ``max_sentences`` keeps the first N lines of each pair (quick runs; recorded in the config). With ``output_dir``
    the result JSON and per-query correctness (``{lang}/xx2en.accuracy`` etc., 0/1 per line) are written there.
    """
    started = time.perf_counter()
    pairs = [read_tatoeba_pair(lang, root) for lang in languages]  # all files checked before any encoding
    if max_sentences is not None:
        pairs = [replace(pair, xx=pair.xx[:max_sentences], en=pair.en[:max_sentences]) for pair in pairs]
    texts = [text for pair in pairs for text in (*pair.xx, *pair.en)]
    vectors = encode_unique(
        encoder, texts, prefix=encoder.query_prefix, batch_size=batch_size, show_progress=show_progress
    )
    per_language: dict[str, dict[str, float]] = {}
    per_query: dict[str, np.ndarray] = {}
    offset = 0
    for pair in pairs:
        n = len(pair.xx)
        xx, en = vectors[offset : offset + n], vectors[offset + n : offset + 2 * n]
        offset += 2 * n
        per_language[pair.lang], correct = score_pair(xx, en)
        per_query.update({f"{pair.lang}/{key}": hits for key, hits in correct.items()})
        per_query[f"{pair.lang}/query_ids"] = np.arange(n)
    aggregates = language_aggregates(per_language, METRICS)
    result = TaskResult(
        task=TASK,
        main_score=MainScore(metric="xx2en.accuracy", value=aggregates["all"]["xx2en.accuracy"]),
        languages=per_language,
        aggregates=aggregates,
        extra={
            "files": {pair.lang: pair.path.name for pair in pairs},
            "low_resource": {code: get_language(code).low_resource for code in per_language},
        },
        model=encoder.describe(),
        config={
            "languages": [pair.lang for pair in pairs],
            "max_sentences": max_sentences,
            "data": str(tatoeba_dir(root)),
            "prefix": {"xx": encoder.query_prefix, "en": encoder.query_prefix},
            "directions": ["xx2en", "en2xx"],
            "search": TIE_RULE,
            "gold": "identity (raw, unsorted files)",
        },
        duration_s=time.perf_counter() - started,
    )
    if output_dir is not None:
        result = write_result(output_dir, result, per_query)
    return result
