"""Shared machinery of the parallel-text retrieval tasks (Tatoeba, UDHR): encode, top-1 both ways, group languages.

Both tasks are "line i translates line i": queries on one side, candidates on the other, gold is the identity, the
prediction is the exact cosine argmax with ties to the lowest candidate index (:func:`polyret.mining.knn.exact_topk`),
and per-language scores are grouped by :func:`polyret.data.languages.low_resource_group`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from polyret.data.languages import low_resource_group
from polyret.encode.base import Encoder
from polyret.eval.metrics import top1_accuracy, weighted_precision_recall_f1
from polyret.mining.knn import exact_topk

TIE_RULE = "exact cosine (faiss IndexFlatIP), ties to the lowest candidate index"


def encode_unique(
    encoder: Encoder, texts: Sequence[str], *, prefix: str, batch_size: int = 32, show_progress: bool = True
) -> np.ndarray:
    """Encode ``texts`` in one call (so length-sorted batching spans all languages), each distinct text once."""
    unique = list(dict.fromkeys(texts))
    vectors = encoder.encode(unique, prefix=prefix, batch_size=batch_size, show_progress=show_progress)
    row = {text: i for i, text in enumerate(unique)}
    return vectors[[row[text] for text in texts]]


def top1_predictions(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Index of each query's best candidate."""
    _, indices = exact_topk(queries, candidates, 1)
    return indices[:, 0]


def score_pair(
    xx: np.ndarray, en: np.ndarray, metric: str = "accuracy", *, mining_scores: bool = False
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Top-1 ``metric`` (x100) xx→en, en→xx, their mean and n for one aligned pair, plus per-query correctness.

    ``mining_scores`` adds MTEB's bitext-mining ``{direction}.f1``/``.precision``/``.recall`` (x100,
    :func:`~polyret.eval.metrics.weighted_precision_recall_f1`) for both directions.
    """
    gold = np.arange(len(xx))
    predicted = {"xx2en": top1_predictions(xx, en), "en2xx": top1_predictions(en, xx)}
    scores = {f"{direction}.{metric}": 100.0 * top1_accuracy(pred, gold) for direction, pred in predicted.items()}
    scores[f"mean.{metric}"] = (scores[f"xx2en.{metric}"] + scores[f"en2xx.{metric}"]) / 2
    if mining_scores:
        for direction, pred in predicted.items():
            precision, recall, f1 = weighted_precision_recall_f1(pred, gold)
            scores.update(
                {
                    f"{direction}.f1": 100.0 * f1,
                    f"{direction}.precision": 100.0 * precision,
                    f"{direction}.recall": 100.0 * recall,
                }
            )
    scores["n"] = float(len(xx))
    return scores, {f"{direction}.{metric}": (pred == gold).astype(np.uint8) for direction, pred in predicted.items()}


def language_aggregates(
    languages: Mapping[str, Mapping[str, float]], metrics: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Macro means of ``metrics`` over 'all', 'low-resource' and 'other' languages (with their counts)."""
    groups = {"all": list(languages), **low_resource_group(languages)}
    aggregates: dict[str, dict[str, float]] = {}
    for group, codes in groups.items():
        summary = {"languages": float(len(codes))}
        if codes:
            summary.update({metric: float(np.mean([languages[code][metric] for code in codes])) for metric in metrics})
        aggregates[group] = summary
    return aggregates
