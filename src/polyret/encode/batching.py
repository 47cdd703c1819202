"""The encoding loop every encoder kind shares: check the texts, batch them longest first, show progress."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from polyret.errors import ConfigError


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, refusing a bare string (a common slip) and non-string items."""
    if isinstance(texts, str):
        raise TypeError("encode() takes a sequence of texts, not one string; wrap it in a list")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {index} is {type(text).__name__}, not str")
    return texts


def encode_length_sorted(
    encoder: Any, texts: Sequence[str], *, prefix: str, max_length: int | None, batch_size: int, show_progress: bool
) -> np.ndarray:
    """The batching loop every encoder with ``tokenize``, ``embed_ids`` and ``dim`` shares.

    Texts are tokenized once, batched longest first (each batch pads little, and an out-of-memory batch fails at
    once) and the float32 rows are returned in input order, shape ``(len(texts), dim)``.
    """
    texts = check_texts(texts)
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be positive, got {batch_size}")
    token_ids = encoder.tokenize([prefix + text for text in texts], max_length)
    lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
    order = np.argsort(-lengths, kind="stable")
    out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    starts = range(0, len(order), batch_size)
    with progress_bar(
        show_progress and len(order) > batch_size, f"encoding {len(texts)} texts", len(starts)
    ) as advance:
        for start in starts:
            rows = order[start : start + batch_size]
            out[rows] = encoder.embed_ids([token_ids[i] for i in rows])
            advance()
    return out


@contextlib.contextmanager
def progress_bar(show: bool, description: str, total: int) -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr over ``total`` steps; yields ``advance()`` (a no-op when ``show`` is false)."""
    if not show:
        yield lambda: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)
