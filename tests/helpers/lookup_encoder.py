"""An :class:`~polyret.encode.base.Encoder` whose vectors are chosen by the test, for hand-computed retrieval cases.

Texts found in ``vectors`` get that vector (L2-normalised); any other text gets a fixed pseudo-random unit vector
derived from its hash, so distinct texts are (almost surely) distinct and identical texts identical. With
``prefixed=True`` the key (table entry and hash) is ``prefix + text``, so a query and a passage of the same text
differ. Every call's prefix and texts are recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np


class LookupEncoder:
    query_prefix = "query: "
    passage_prefix = "passage: "

    def __init__(
        self, vectors: Mapping[str, Sequence[float]] | None = None, dim: int = 8, *, prefixed: bool = False
    ) -> None:
        self.vectors = {text: np.asarray(vector, dtype=np.float32) for text, vector in (vectors or {}).items()}
        self._dim = dim
        self.prefixed = prefixed
        self.calls: list[tuple[str, list[str]]] = []

    @property
    def fingerprint(self) -> str:
        return "lookup-encoder"

    @property
    def dim(self) -> int:
        return self._dim

    def _vector(self, text: str) -> np.ndarray:
        if text in self.vectors:
            vector = self.vectors[text]
        else:
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
            vector = np.random.default_rng(seed).standard_normal(self._dim).astype(np.float32)
        return vector / np.linalg.norm(vector)

    def encode(
        self,
        texts: Sequence[str],
        *,
        prefix: str = "",
        max_length: int | None = None,
        batch_size: int = 32,
        show_progress: bool = True,
    ) -> np.ndarray:
        self.calls.append((prefix, list(texts)))
        keys = [prefix + text for text in texts] if self.prefixed else texts
        return np.stack([self._vector(key) for key in keys]) if keys else np.zeros((0, self._dim), np.float32)

    def describe(self) -> dict[str, object]:
        return {"model": "lookup", "fingerprint": self.fingerprint, "dim": self._dim}
