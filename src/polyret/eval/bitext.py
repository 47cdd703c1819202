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
from polyret.eval.metrics import top1_accuracy
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
    xx: np.ndarray, en: np.ndarray, metric: str = "accuracy"
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Top-1 ``metric`` (x100) xx→en, en→xx, their mean and n for one aligned pair, plus per-query correctness."""
    gold = np.arange(len(xx))
    predicted = {f"xx2en.{metric}": top1_predictions(xx, en), f"en2xx.{metric}": top1_predictions(en, xx)}
    scores = {key: 100.0 * top1_accuracy(pred, gold) for key, pred in predicted.items()}
    scores[f"mean.{metric}"] = (scores[f"xx2en.{metric}"] + scores[f"en2xx.{metric}"]) / 2
    scores["n"] = float(len(xx))
    return scores, {key: (pred == gold).astype(np.uint8) for key, pred in predicted.items()}


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
