"""Offline behaviour: every path that would need the network fails fast, through the CLI, with one `error:` line.

"No network" is made explicit instead of trusted to the machine: the Hub is switched off (``HF_HUB_OFFLINE``) or
pointed at a closed local port (``HF_ENDPOINT``), and downloads go through a proxy on a closed local port, so a
connection is refused at once wherever the tests run. The time bound only catches hangs (retries, DNS waits);
it is not a speed target.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

POLYRET = Path(sys.executable).with_name("polyret")
HANG_BOUND_S = 20.0


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    dead = f"http://127.0.0.1:{_closed_port()}"
    env = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
        HF_ENDPOINT=dead,
        POLYRET_HOME=str(tmp_path / "home"),
        POLYRET_DATA_DIR=str(tmp_path / "no-data"),
        HTTP_PROXY=dead,
        HTTPS_PROXY=dead,
        http_proxy=dead,
        https_proxy=dead,
        NO_PROXY="",
        no_proxy="",
        COLUMNS="400",  # rich must not wrap the one-line message
    )
    return env


def _run_cli(env: dict[str, str], *args: str) -> tuple[int, str, float]:
    if not POLYRET.exists():
        pytest.skip(f"{POLYRET} is not installed (pip install -e . installs the console script)")
    start = time.monotonic()
    proc = subprocess.run([str(POLYRET), *args], env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def _assert_one_error_line(code: int, output: str, elapsed: float, *expected: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2, output
    assert len(lines) == 1 and lines[0].startswith("error:"), output
    assert "Traceback" not in output
    for text in expected:
        assert text in lines[0], lines[0]
    assert elapsed < HANG_BOUND_S, f"took {elapsed:.1f} s: something waited on the network"


@pytest.fixture
def texts_file(tmp_path: Path) -> Path:
    source = tmp_path / "in.txt"
    source.write_text("one text\n", encoding="utf-8")
    return source


@pytest.mark.parametrize(
    ("model", "hint"),
    [
        ("someone/no-such-model-xyz", "not in the local Hugging Face cache"),
        ("facebook/mbart-large-50", "facebook/mbart-large-50"),  # the seq2seq encoder's usual id
        ("intfloat/multilingual-e5-smal", "did you mean 'intfloat/multilingual-e5-small'"),
    ],
)
def test_uncached_model_id_fails_fast_with_hub_off(offline_env, texts_file, tmp_path, model, hint):
    code, output, elapsed = _run_cli(
        offline_env, "encode", "--model", model, "--input", str(texts_file), "--output", str(tmp_path / "out.npy")
    )
    _assert_one_error_line(code, output, elapsed, hint, "offline")
    assert not (tmp_path / "out.npy").exists()


def test_uncached_model_id_fails_fast_when_the_hub_is_unreachable(offline_env, texts_file, tmp_path):
    """HF_HUB_OFFLINE unset: the reachability probe (refused at once here) must stand in for it."""
    env = {key: value for key, value in offline_env.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    code, output, elapsed = _run_cli(
        env,
        "encode",
        "--model",
        "facebook/mbart-large-50",
        "--input",
        str(texts_file),
        "--output",
        str(tmp_path / "out.npy"),
    )
    _assert_one_error_line(code, output, elapsed, "cannot be reached")


def test_data_prepare_of_a_missing_data_set_fails_fast(offline_env, tmp_path):
    code, output, elapsed = _run_cli(offline_env, "data", "prepare", "mintaka")
    _assert_one_error_line(code, output, elapsed, "cannot download", "POLYRET_DATA_DIR")
    assert not any((tmp_path / "no-data").rglob("*.json"))  # nothing half-downloaded left behind


def test_unknown_data_set_lists_the_known_ones(offline_env):
    code, output, elapsed = _run_cli(offline_env, "data", "prepare", "no-such-set")
    _assert_one_error_line(code, output, elapsed, "unknown data set", "tatoeba")
