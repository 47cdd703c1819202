"""The :class:`Encoder` protocol every stage encodes through (eval, mining, training validation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    ``encode`` prepends ``prefix`` to every text (callers pass ``encoder.query_prefix`` or
    ``encoder.passage_prefix``) and returns an array of shape ``(len(texts), dim)`` in input order.
    ``fingerprint`` identifies the weights and every setting that changes the vectors (pooling, layer,
    max length), so it can key caches and be recorded in results; ``describe()`` is what results record.
    """

    query_prefix: str
    passage_prefix: str

    @property
    def fingerprint(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(
        self,
        texts: Sequence[str],
        *,
        prefix: str = "",
        max_length: int | None = None,
        batch_size: int = 32,
        show_progress: bool = True,
    ) -> np.ndarray: ...

    def describe(self) -> dict[str, object]: ...
