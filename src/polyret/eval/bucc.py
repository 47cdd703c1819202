"""BUCC 2018 bitext mining (PROTOCOLS §3.3) and a BUCC-style task built from Tatoeba.

Per language: deduplicate each side, embed with the query prefix, mine candidates with the shared margin miner
(:func:`polyret.mining.margin.mine_pairs`, k 4, ratio margin, one-to-one, **no threshold**, scores kept), map
texts back to IDs (texts with several IDs are dropped), tune the threshold on dev (``sample``) for F1
(:func:`polyret.eval.metrics.best_f1_threshold`), and score test (``training``) keeping candidates with
``score >= threshold``. Reported (x100): ``f1``, ``precision``, ``recall``; plus the dev F1, the threshold, and a
labelled ``oracle.f1`` with the threshold tuned on test itself (LASER's published numbers are of this kind).

The official files are not redistributable: :func:`evaluate_bucc` reads them from ``<data_dir>/bucc2018``.
:func:`evaluate_bucc_style` needs only Tatoeba: it hides real parallel pairs of one language among sentences that
are not translations of each other (English from other Tatoeba pairs, the language's own lines whose English is
left out) and mines them back, with separate dev and test pools for the threshold.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from polyret.data.bucc import BUCC_LANGS, BuccSide, BuccSplit, bucc_dir, read_bucc
from polyret.data.languages import get_language
from polyret.data.tatoeba import available_codes, read_lines, read_tatoeba_pair, tatoeba_dir
from polyret.encode.base import Encoder
from polyret.errors import UnknownNameError
from polyret.eval.bitext import language_aggregates
from polyret.eval.metrics import best_f1_threshold, precision_recall_f1
from polyret.eval.options import TaskOptions
from polyret.eval.results import MainScore, TaskResult, write_result
from polyret.mining.margin import MarginKind, dedupe, mine_pairs

METRICS = ("f1", "precision", "recall", "oracle.f1")
BUCC_STYLE_LANGS: tuple[str, ...] = ("de", "fr", "ru", "zh", "sw", "kk", "et", "eu")


@dataclass(frozen=True)
class Candidates:
    """Mined ID pairs, best first, with their margin scores."""

    xx_ids: list[str]
    en_ids: list[str]
    scores: np.ndarray

    def correct(self, gold: set[tuple[str, str]]) -> np.ndarray:
        return np.array([pair in gold for pair in zip(self.xx_ids, self.en_ids, strict=True)], dtype=bool)


class BuccOptions(TaskOptions):
    """The study-config options of :func:`evaluate_bucc`."""

    root: Path | None = None
    k: int = Field(4, ge=1)
    margin: MarginKind = "ratio"


class BuccStyleOptions(BuccOptions):
    """The study-config options of :func:`evaluate_bucc_style`."""

    source: Literal["tatoeba"] = "tatoeba"
    n_parallel: int = Field(150, ge=1)
    n_distractors: int = Field(1000, ge=0)
    seed: int = 0


def _encode(encoder: Encoder, texts: list[str], batch_size: int, show_progress: bool) -> np.ndarray:
    return encoder.encode(texts, prefix=encoder.query_prefix, batch_size=batch_size, show_progress=show_progress)


def mine_candidates(
    encoder: Encoder,
    split: BuccSplit,
    *,
    k: int = 4,
    margin: MarginKind = "ratio",
    batch_size: int = 32,
    show_progress: bool = True,
) -> Candidates:
    """Steps 1–3 of PROTOCOLS §3.3 for one split: dedupe, embed (query prefix), mine with no threshold."""
    xx_unique, en_unique = dedupe(split.xx.texts), dedupe(split.en.texts)
    xx_vectors = _encode(encoder, xx_unique.unique, batch_size, show_progress)
    en_vectors = _encode(encoder, en_unique.unique, batch_size, show_progress)
    pairs = mine_pairs(xx_vectors, en_vectors, k=k, margin=margin, threshold=None)
    xx_map, en_map = split.xx.text_to_id(), split.en.text_to_id()
    xx_ids, en_ids, keep = [], [], []
    for row, (i, j) in enumerate(zip(pairs.src_index.tolist(), pairs.tgt_index.tolist(), strict=True)):
        xx_id, en_id = xx_map.get(xx_unique.unique[i]), en_map.get(en_unique.unique[j])
        if xx_id is not None and en_id is not None:
            xx_ids.append(xx_id)
            en_ids.append(en_id)
            keep.append(row)
    return Candidates(xx_ids, en_ids, pairs.score[np.asarray(keep, dtype=np.int64)])


def score_language(
    dev: Candidates, dev_gold: set[tuple[str, str]], test: Candidates, test_gold: set[tuple[str, str]]
) -> tuple[dict[str, float], np.ndarray]:
    """Steps 4–6 plus the oracle: metrics (x100) and, per sorted test-gold pair, whether it was predicted."""
    threshold, dev_f1 = best_f1_threshold(dev.scores, dev.correct(dev_gold), len(dev_gold))
    kept = test.scores >= threshold
    predicted = {pair for pair, keep in zip(zip(test.xx_ids, test.en_ids, strict=True), kept, strict=True) if keep}
    precision, recall, f1 = precision_recall_f1(predicted, test_gold)
    oracle_threshold, oracle_f1 = best_f1_threshold(test.scores, test.correct(test_gold), len(test_gold))
    metrics = {
        "f1": 100 * f1,
        "precision": 100 * precision,
        "recall": 100 * recall,
        "threshold": threshold,
        "dev.f1": 100 * dev_f1,
        "oracle.f1": 100 * oracle_f1,
        "oracle.threshold": oracle_threshold,
        "n_gold": float(len(test_gold)),
        "n_predicted": float(len(predicted)),
        "n_candidates": float(len(test.scores)),
    }
    found = np.array([pair in predicted for pair in sorted(test_gold)], dtype=np.uint8)
    return metrics, found


def _evaluate(
    task: str,
    encoder: Encoder,
    splits: dict[str, tuple[BuccSplit, BuccSplit]],
    *,
    k: int,
    margin: MarginKind,
    batch_size: int,
    show_progress: bool,
    config: dict[str, Any],
    output_dir: str | Path | None,
    started: float,
) -> TaskResult:
    per_language: dict[str, dict[str, float]] = {}
    per_query: dict[str, np.ndarray] = {}
    sizes: dict[str, dict[str, int]] = {}
    for lang, (dev, test) in splits.items():
        dev_candidates, test_candidates = (
            mine_candidates(encoder, split, k=k, margin=margin, batch_size=batch_size, show_progress=show_progress)
            for split in (dev, test)
        )
        metrics, found = score_language(dev_candidates, dev.gold, test_candidates, test.gold)
        metrics.update({"n_xx": float(len(test.xx.ids)), "n_en": float(len(test.en.ids))})
        per_language[lang] = metrics
        per_query[f"{lang}/gold_found"] = found
        per_query[f"{lang}/query_ids"] = np.array([f"{x}\t{e}" for x, e in sorted(test.gold)])
        sizes[lang] = {
            f"{name}.{side}": len(getattr(split, side).ids)
            for name, split in (("dev", dev), ("test", test))
            for side in ("xx", "en")
        }
    aggregates = language_aggregates(per_language, METRICS)
    result = TaskResult(
        task=task,
        split="test",
        main_score=MainScore(metric="f1", value=aggregates["all"].get("f1", 0.0)),
        languages=per_language,
        aggregates=aggregates,
        extra={
            "sizes": sizes,
            "oracle": "oracle.f1 tunes the threshold on test itself (LASER-style); not a held-out score",
            "low_resource": {code: get_language(code).low_resource for code in per_language},
        },
        model=encoder.describe(),
        config={
            **config,
            "k": k,
            "margin": margin,
            "one_to_one": True,
            "prefix": {"xx": encoder.query_prefix, "en": encoder.query_prefix},
            "threshold": "tuned on dev for F1; test keeps score >= threshold",
            "search": "exact cosine k-NN both ways (faiss), ties to the lower index",
        },
        duration_s=time.perf_counter() - started,
    )
    if output_dir is not None:
        result = write_result(output_dir, result, per_query)
    return result


def evaluate_bucc(
    encoder: Encoder,
    languages: Sequence[str] = BUCC_LANGS,
    root: str | Path | None = None,
    output_dir: str | Path | None = None,
    k: int = 4,
    margin: MarginKind = "ratio",
    batch_size: int = 32,
    show_progress: bool = True,
) -> TaskResult:
    """BUCC 2018 F1 per language (dev = ``sample``, test = ``training``) and the mean; see the module docstring."""
    started = time.perf_counter()
    splits = read_bucc(languages, root)  # every file checked before any encoding
    config = {"languages": list(languages), "data": str(bucc_dir(root)), "dev": "sample", "test": "training"}
    return _evaluate(
        "bucc",
        encoder,
        splits,
        k=k,
        margin=margin,
        batch_size=batch_size,
        show_progress=show_progress,
        config=config,
        output_dir=output_dir,
        started=started,
    )


# ------------------------------------------------------------------------------------------------- BUCC-style
def build_bucc_style(
    lang: str, *, n_parallel: int = 150, n_distractors: int = 1000, seed: int = 0, root: str | Path | None = None
) -> tuple[BuccSplit, BuccSplit]:
    """Dev and test pools for ``lang`` from Tatoeba, as BUCC splits with gold ID pairs.

    The language's lines are shuffled (seeded by ``seed`` and the language) and halved, one half per split. In
    each half, ``min(n_parallel, half/2)`` lines enter as parallel pairs (both sides); up to ``n_distractors`` other
    lines enter with their xx side only. The English side adds ``n_distractors`` sentences from the other Tatoeba
    pairs' English files that are not on this language's English side (so none translates an xx sentence of the
    pool), distinct between dev and test. Each side is shuffled; IDs look like ``sw-dev-x00042`` / ``sw-dev-e00042``.
    """
    pair = read_tatoeba_pair(lang, root)
    own_file = pair.path.name.split(".")[1].removesuffix("-eng")
    own_english = set(pair.en)
    folder = tatoeba_dir(root)
    others = sorted(
        {
            text
            for code in available_codes(root)
            if code != own_file
            for text in read_lines(folder / f"tatoeba.{code}-eng.eng")
        }
        - own_english
    )
    rng = np.random.default_rng([seed, zlib.crc32(pair.lang.encode())])
    distractors = [others[i] for i in rng.permutation(len(others))[: 2 * n_distractors]]
    lines = rng.permutation(len(pair))
    halves = (lines[: len(lines) // 2], lines[len(lines) // 2 :])
    splits = []
    for number, (name, half) in enumerate(zip(("dev", "test"), halves, strict=True)):
        n_par = min(n_parallel, len(half) // 2)
        parallel, xx_only = half[:n_par], half[n_par : n_par + n_distractors]
        english = distractors[number * n_distractors : (number + 1) * n_distractors]
        xx_side = [(f"{pair.lang}-{name}-x{int(i):05d}", pair.xx[i]) for i in (*parallel, *xx_only)]
        en_side = [(f"{pair.lang}-{name}-e{int(i):05d}", pair.en[i]) for i in parallel]
        en_side += [(f"{pair.lang}-{name}-d{j:05d}", text) for j, text in enumerate(english)]
        xx_side = [xx_side[i] for i in rng.permutation(len(xx_side))]
        en_side = [en_side[i] for i in rng.permutation(len(en_side))]
        gold = {(f"{pair.lang}-{name}-x{int(i):05d}", f"{pair.lang}-{name}-e{int(i):05d}") for i in parallel}
        splits.append(
            BuccSplit(
                pair.lang,
                name,
                BuccSide([i for i, _ in xx_side], [t for _, t in xx_side], pair.path),
                BuccSide([i for i, _ in en_side], [t for _, t in en_side], pair.path),
                gold,
            )
        )
    return splits[0], splits[1]


def evaluate_bucc_style(
    encoder: Encoder,
    languages: Sequence[str] = BUCC_STYLE_LANGS,
    source: str = "tatoeba",
    n_parallel: int = 150,
    n_distractors: int = 1000,
    seed: int = 0,
    root: str | Path | None = None,
    output_dir: str | Path | None = None,
    k: int = 4,
    margin: MarginKind = "ratio",
    batch_size: int = 32,
    show_progress: bool = True,
) -> TaskResult:
    """Mine hidden Tatoeba pairs back from distractor-laden pools (:func:`build_bucc_style`); F1 as in BUCC."""
    if source != "tatoeba":
        raise UnknownNameError("BUCC-style source", source, ["tatoeba"])
    started = time.perf_counter()
    splits = {}
    for lang in languages:
        dev, test = build_bucc_style(lang, n_parallel=n_parallel, n_distractors=n_distractors, seed=seed, root=root)
        splits[dev.lang] = (dev, test)
    config = {
        "languages": list(splits),
        "source": source,
        "n_parallel": n_parallel,
        "n_distractors": n_distractors,
        "seed": seed,
        "dev": "first half of the shuffled lines",
        "test": "second half",
    }
    return _evaluate(
        "bucc-style",
        encoder,
        splits,
        k=k,
        margin=margin,
        batch_size=batch_size,
        show_progress=show_progress,
        config=config,
        output_dir=output_dir,
        started=started,
    )
