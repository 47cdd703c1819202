"""Crash safety of sharded encoding: SIGKILL at seeded random points, resume, compare with an uninterrupted run.

Training already has its kill-and-resume test (tests/train/test_contrastive.py::
test_kill_after_checkpoint_then_resume_matches_uninterrupted_run: SIGKILL after a checkpoint, resumed weights
equal the uninterrupted run's), and so does the study runner (tests/study/test_runner.py); this file covers
:func:`polyret.encode.shards.encode_to_shards`, the resumable encoder behind MIRACL's passage shards.

The kill comes from inside the worker (this file, run as a script) so that it lands at a chosen point rather
than wherever the scheduler happened to be: just before the N-th encode call, fsync or rename, which covers a
temp file written but not synced, synced but not renamed, and each file of a shard renamed without the next.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

CORPUS = [(f"doc-{i}", f"passage {i} " + "word " * (i % 7)) for i in range(23)]
SHARD_SIZE = 5
KILLED = -signal.SIGKILL


class HashEncoder:
    """Deterministic vectors from a CRC of the text: the crash test needs repeatable output, not a model."""

    fingerprint = "hash-encoder"
    dim = 6

    def encode(self, texts, *, prefix="", max_length=None, batch_size=32, show_progress=True) -> np.ndarray:
        rows = [np.random.default_rng(zlib.crc32(f"{prefix}{text}".encode())).normal(size=self.dim) for text in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)

    def describe(self) -> dict[str, str]:
        return {"encoder": "hash", "fingerprint": self.fingerprint}


def _kill_before_event(kill_at: int, encoder: HashEncoder) -> None:
    """SIGKILL this process just before its ``kill_at``-th encode, fsync or rename (1-based)."""
    count = 0

    def wrap(function):
        def wrapped(*args, **kwargs):
            nonlocal count
            count += 1
            if count == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)
        return wrapped

    os.fsync, os.replace = wrap(os.fsync), wrap(os.replace)
    encoder.encode = wrap(encoder.encode)


def _worker(out_dir: str, kill_at: int) -> None:
    from polyret.encode.shards import encode_to_shards

    encoder = HashEncoder()
    if kill_at > 0:
        _kill_before_event(kill_at, encoder)
    encode_to_shards(encoder, CORPUS, out_dir, shard_size=SHARD_SIZE, dtype="float16", prefix="p: ",
                     show_progress=False)


def _run_worker(out_dir: Path, kill_at: int = 0) -> int:
    return subprocess.run([sys.executable, __file__, str(out_dir), str(kill_at)], capture_output=True,
                          timeout=120).returncode


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


# 7 events a shard (encode; fsync + rename of vectors, ids, manifest) and 4 at the end (ids.txt, manifest)
EVENTS = 7 * -(-len(CORPUS) // SHARD_SIZE) + 4


def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(tmp_path):
    straight = tmp_path / "straight"
    assert _run_worker(straight) == 0
    expected = _files(straight)
    assert not [name for name in expected if name.startswith(".")]

    rng = random.Random(0)
    for trial in range(4):
        out = tmp_path / f"killed-{trial}"
        kills = 0
        for _ in range(8):  # bounded: each attempt kills at a fresh point; one past the end finishes
            kill_at = rng.randint(1, EVENTS)
            code = _run_worker(out, kill_at)
            assert code in (0, KILLED), f"kill at event {kill_at}: exit {code}"
            if code == 0:
                break
            kills += 1
        else:
            assert _run_worker(out) == 0
        assert kills, "the seeded kill points never hit the run"
        # byte-equal shards, ids, manifest; no temp file of a killed attempt is left behind
        assert _files(out) == expected, f"trial {trial}: resumed output differs after {kills} kills"


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]))
