"""UDHR article retrieval against English (PROTOCOLS.md §3.5): a coverage map over 500+ versions.

For each complete version and the evaluation article set A, the version's articles in A are queries and the English
(``eng``) articles in A candidates (``xx2en``), and the reverse (``en2xx``); P@1 is the share of queries whose top
candidate has the same article number (x100; chance is 100/|A|). Both sides carry the query prefix. Per-version
scores are keyed by the package's version code (``swh``, ``cmn_hans``), since a language can have several versions;
low-resource grouping goes through the version's language. ``articles='even'`` is the mandatory hold-out set when UDHR
(odd articles) was used in training or model selection; results with different |A| are not comparable.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from polyret.data.languages import get_language
from polyret.data.udhr import N_ARTICLES, UdhrCorpus, load_udhr
from polyret.encode.base import Encoder
from polyret.errors import ConfigError, UnknownNameError
from polyret.eval.bitext import TIE_RULE, encode_unique, language_aggregates, score_pair
from polyret.eval.options import TaskOptions
from polyret.eval.results import MainScore, TaskResult, write_result

TASK = "udhr"
ENGLISH = "eng"
METRICS = ("xx2en.p@1", "en2xx.p@1", "mean.p@1")
ARTICLE_SETS = {
    "all": tuple(range(1, N_ARTICLES + 1)),
    "even": tuple(range(2, N_ARTICLES + 1, 2)),
    "odd": tuple(range(1, N_ARTICLES + 1, 2)),
}


class UdhrOptions(TaskOptions):
    """The study-config options of :func:`evaluate_udhr`."""

    #: the evaluation article set: all | even | odd or explicit numbers (PROTOCOLS §3.5)
    articles: Literal["all", "even", "odd"] | list[int] = "all"


def article_set(articles: str | Sequence[int]) -> tuple[int, ...]:
    """``'all'`` (30), ``'even'`` (the 15 held-out ones, PROTOCOLS.md §3.5), ``'odd'``, or explicit numbers."""
    if isinstance(articles, str):
        if articles not in ARTICLE_SETS:
            raise UnknownNameError("UDHR article set", articles, list(ARTICLE_SETS))
        return ARTICLE_SETS[articles]
    chosen = tuple(sorted(set(articles)))
    if len(chosen) < 2 or not all(1 <= number <= N_ARTICLES for number in chosen):
        raise ConfigError(f"UDHR articles must be at least 2 distinct numbers in 1..{N_ARTICLES}, got {articles!r}")
    return chosen


def coverage(per_version: dict[str, dict[str, float]], metric: str) -> dict[str, float]:
    """How many versions reach P@1 >= 0.9 and how many stay below 0.5 on ``metric``."""
    values = [scores[metric] for scores in per_version.values()]
    return {
        "at_least_0.9": float(sum(value >= 90.0 for value in values)),
        "below_0.5": float(sum(value < 50.0 for value in values)),
        "versions": float(len(values)),
    }


def select_versions(corpus: UdhrCorpus, codes: Sequence[str] | None) -> list[str]:
    """Version codes to evaluate: every complete one but English by default; a language code (``sw``, ``yor``) stands
    for all complete versions of that language, a version code (``swh``, ``cmn_hans``) for itself."""
    chosen: list[str] = [code for code in corpus.versions if code != ENGLISH] if codes is None else []
    for code in codes or ():
        if code in corpus.versions:
            matches = [code]
        else:
            language = get_language(code)
            matches = [
                version for version in corpus.versions if version != ENGLISH and get_language(version) == language
            ]
        if not matches:
            raise UnknownNameError("complete UDHR version", code, list(corpus.versions))
        chosen.extend(match for match in matches if match not in chosen)
    if not chosen:
        raise ConfigError("no UDHR versions to evaluate; pass version or language codes such as 'swh' or 'yo'")
    return chosen


def evaluate_udhr(
    encoder: Encoder,
    languages: Sequence[str] | None = None,
    articles: str | Sequence[int] = "all",
    corpus: UdhrCorpus | None = None,
    output_dir: str | Path | None = None,
    batch_size: int = 32,
    show_progress: bool = True,
) -> TaskResult:
    """Score ``encoder`` on UDHR against ``eng``: every complete version, or those :func:`select_versions` picks.

    Needs ``polyret data prepare udhr`` (or pass ``corpus``). The main score is the mean ``xx2en.p@1``.
    """
    started = time.perf_counter()
    chosen = article_set(articles)
    corpus = corpus or load_udhr(complete_only=True)
    if ENGLISH not in corpus.versions:
        raise UnknownNameError("UDHR version (English reference missing)", ENGLISH, list(corpus.versions))
    codes = select_versions(corpus, languages)
    texts = [corpus.versions[code].articles[number] for code in (ENGLISH, *codes) for number in chosen]
    vectors = encode_unique(
        encoder, texts, prefix=encoder.query_prefix, batch_size=batch_size, show_progress=show_progress
    )
    size = len(chosen)
    english = vectors[:size]
    per_version: dict[str, dict[str, float]] = {}
    per_query: dict[str, np.ndarray] = {}
    for position, code in enumerate(codes, start=1):
        per_version[code], correct = score_pair(vectors[position * size : (position + 1) * size], english, "p@1")
        per_query.update({f"{code}/{key}": hits for key, hits in correct.items()})
        per_query[f"{code}/query_ids"] = np.asarray(chosen)
    aggregates = language_aggregates(per_version, METRICS)
    result = TaskResult(
        task=TASK,
        main_score=MainScore(metric="xx2en.p@1", value=aggregates["all"]["xx2en.p@1"]),
        languages=per_version,
        aggregates=aggregates,
        extra={
            "coverage": {"xx2en": coverage(per_version, "xx2en.p@1"), "en2xx": coverage(per_version, "en2xx.p@1")},
            "versions": {
                code: {
                    "iso6393": corpus.versions[code].iso6393,
                    "name": corpus.versions[code].name,
                    "language": get_language(code).code,
                    "low_resource": get_language(code).low_resource,
                }
                for code in codes
            },
            "chance": 100.0 / size,
        },
        model=encoder.describe(),
        config={
            "versions": codes,
            "articles": list(chosen),
            "n_articles": size,
            "reference": ENGLISH,
            "source": str(corpus.path),
            "prefix": {"xx": encoder.query_prefix, "en": encoder.query_prefix},
            "directions": ["xx2en", "en2xx"],
            "search": TIE_RULE,
        },
        duration_s=time.perf_counter() - started,
    )
    if output_dir is not None:
        result = write_result(output_dir, result, per_query)
    return result
