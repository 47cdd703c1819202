"""Fixtures for encoder tests: the real embedded model (prepared once per session) and counting encoders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


class CountingEncoder:
    """A deterministic fake encoder (hash-seeded vectors) that counts the texts it was asked to encode."""

    query_prefix = "q: "
    passage_prefix = "p: "

    def __init__(self, dim: int = 8, fingerprint: str = "counting-encoder", fail_after: int | None = None) -> None:
        self._dim = dim
        self._fingerprint = fingerprint
        self.calls: list[int] = []
        self.fail_after = fail_after

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dim(self) -> int:
        return self._dim

    def vector(self, text: str, prefix: str = "", max_length: int | None = None) -> np.ndarray:
        import hashlib

        seed = int.from_bytes(hashlib.sha256(f"{prefix}|{max_length}|{text}".encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).normal(size=self._dim).astype(np.float32)
        return vector / np.linalg.norm(vector)

    def encode(self, texts, *, prefix="", max_length=None, batch_size=32, show_progress=True):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append(len(texts))
        if not len(texts):
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.stack([self.vector(text, prefix, max_length) for text in texts])

    def describe(self):
        return {"encoder": "counting", "fingerprint": self.fingerprint}


@pytest.fixture
def counting_encoder() -> CountingEncoder:
    return CountingEncoder()


@pytest.fixture
def make_counting_encoder() -> type[CountingEncoder]:
    """The CountingEncoder class, for tests that need several (or failing) ones."""
    return CountingEncoder


@pytest.fixture
def polyret_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty $POLYRET_HOME for this test."""
    home = tmp_path / "polyret-home"
    monkeypatch.setenv("POLYRET_HOME", str(home))
    return home
