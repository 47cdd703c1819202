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

from helpers.cli import PASSAGE_SHARDS, encode_args

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
    encode_to_shards(
        encoder, CORPUS, out_dir, shard_size=SHARD_SIZE, dtype="float16", prefix="p: ", show_progress=False
    )


def _run_worker(out_dir: Path, kill_at: int = 0) -> int:
    return subprocess.run(
        [sys.executable, __file__, str(out_dir), str(kill_at)], capture_output=True, timeout=120
    ).returncode


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


# fsync + rename of the first manifest, 5 events a shard (encode; fsync + rename of vectors and ids) and 4 at the
# end (ids.txt, manifest)
EVENTS = 2 + 5 * -(-len(CORPUS) // SHARD_SIZE) + 4


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


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_the_rerun_finishes(tmp_path, tiny_model_dir):
    """SIGINT (Ctrl-C) in the middle of `polyret encode --shards`: exit 130 with one line saying how to resume, no
    traceback, no temp file; the same command again finishes and equals an uninterrupted run."""
    import time

    source = tmp_path / "corpus.txt"
    source.write_text("".join(f"passage number {i} about item {i % 13}\n" for i in range(4000)), encoding="utf-8")
    command = [sys.executable, "-m", "polyret.cli", *encode_args(tiny_model_dir, source), *PASSAGE_SHARDS]
    command += ["--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "POLYRET_HOME": str(tmp_path / "home")}
    # a terminal's Ctrl-C; SIG_DFL first because a parent started in the background may pass SIGINT on ignored
    process = subprocess.Popen(
        [*command, "--shards", str(tmp_path / "stopped")],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "stopped" / "shard-00003.ids.json").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the encoding ended before the first shards"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "run the same command again" in stderr and "Traceback" not in stderr
    assert not [path.name for path in (tmp_path / "stopped").iterdir() if path.name.endswith(".tmp")]
    assert not (tmp_path / "stopped" / "ids.txt").exists()

    resumed = subprocess.run(
        [*command, "--shards", str(tmp_path / "stopped")], env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0 and "complete" in resumed.stderr, resumed.stderr
    assert "reused 0" not in resumed.stderr
    straight = subprocess.run(
        [*command, "--shards", str(tmp_path / "straight")], env=env, capture_output=True, text=True, timeout=300
    )
    assert straight.returncode == 0, straight.stderr
    assert (tmp_path / "stopped" / "ids.txt").read_text() == (tmp_path / "straight" / "ids.txt").read_text()
    for index in range(400):
        name = f"shard-{index:05d}.npy"
        np.testing.assert_allclose(
            np.load(tmp_path / "stopped" / name), np.load(tmp_path / "straight" / name), atol=1e-3
        )


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]))
