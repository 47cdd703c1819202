"""Model resolution: embedded names, local folders, the Hugging Face cache, and failing fast offline."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from polyret.encode import models
from polyret.encode.models import cached_snapshot, resolve_model, revision_of
from polyret.errors import ModelError


def test_local_folder_resolves_to_itself(tiny_model_dir):
    assert resolve_model(str(tiny_model_dir)) == tiny_model_dir.resolve()


def test_missing_folder_is_one_line(tmp_path):
    with pytest.raises(ModelError, match="not found") as err:
        resolve_model(str(tmp_path / "no-such-model"))
    assert "\n" not in str(err.value)


def test_file_or_empty_folder_is_not_a_model(tmp_path):
    file = tmp_path / "weights.bin"
    file.write_bytes(b"x")
    with pytest.raises(ModelError, match="not a file"):
        resolve_model(str(file))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no modules\.json or config\.json"):
        resolve_model(str(tmp_path / "empty"))


@pytest.mark.parametrize(
    "name",
    [
        "intfloat/multilingual-e5-small",
        "xlm-roberta-base",
        "sentence-transformers/LaBSE",
        "facebook/mbart-large-50",
        "someone/not-a-real-model",
    ],
)
def test_uncached_id_offline_fails_at_once(name, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setattr(models, "hub_reachable", lambda *a, **k: pytest.fail("offline: the network must not be tried"))
    start = time.perf_counter()
    with pytest.raises(ModelError) as err:
        resolve_model(name)
    assert time.perf_counter() - start < 1.0
    message = str(err.value)
    assert "\n" not in message
    assert "polyret models prepare multilingual-e5-small" in message
    assert "local model folder" in message and "go online" in message


def test_typo_gets_a_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    with pytest.raises(ModelError, match="did you mean 'multilingual-e5-small'"):
        resolve_model("multilingual-e5-smal")


def test_unreachable_hub_fails_fast_without_offline_flag(tmp_path, monkeypatch):
    """No HF_HUB_OFFLINE, but no route to the Hub: one bounded probe, then the same one-line error."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    start = time.perf_counter()
    with pytest.raises(ModelError, match="cannot be reached"):
        resolve_model("xlm-roberta-base")
    assert time.perf_counter() - start < 3.0


def test_hub_probe_is_bounded_even_when_the_connection_hangs(monkeypatch):
    released = threading.Event()

    def hang(*args, **kwargs):
        released.wait(30)
        raise OSError("gave up")

    monkeypatch.setattr(models.socket, "create_connection", hang)
    start = time.perf_counter()
    try:
        assert models.hub_reachable(timeout=0.2) is False
        assert time.perf_counter() - start < 1.0
    finally:
        released.set()


def test_unknown_id_offline_fails_fast_from_the_cli(tmp_path):
    """End to end: `polyret encode` with an uncached id exits 2 with one line, quickly (no retries)."""
    source = tmp_path / "in.txt"
    source.write_text("hello\n", encoding="utf-8")
    env = {
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "hf"),
        "POLYRET_HOME": str(tmp_path / "home"),
        "PATH": "/usr/bin:/bin",
    }
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "polyret.cli",
            "encode",
            "--model",
            "someone/uncached-model",
            "--input",
            str(source),
            "--output",
            str(tmp_path / "out.npy"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:") and "someone/uncached-model" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 30  # interpreter start-up included; a hub retry loop would take minutes
    assert not (tmp_path / "out.npy").exists()


def _fake_hf_cache(root, repo_id, commit="0123456789abcdef0123456789abcdef01234567", files=("config.json",)):
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name in files:
        (snapshot / name).write_text("{}")
    return snapshot


def test_cached_id_resolves_to_its_snapshot_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    snapshot = _fake_hf_cache(tmp_path / "hf", "xlm-roberta-base")
    assert cached_snapshot("xlm-roberta-base") == snapshot
    assert resolve_model("xlm-roberta-base") == snapshot
    assert revision_of(snapshot) == snapshot.name


def test_incomplete_snapshot_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    _fake_hf_cache(tmp_path / "hf", "xlm-roberta-base", files=("README.md",))
    assert cached_snapshot("xlm-roberta-base") is None
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        resolve_model("xlm-roberta-base")


def test_embedded_name_is_prepared_on_demand(monkeypatch, tmp_path):
    prepared = tmp_path / "prepared"
    calls = []
    monkeypatch.setattr(
        "polyret.encode.models.prepare_embedded_model", lambda name, force=False: calls.append(name) or prepared
    )
    assert resolve_model("multilingual-e5-small") == prepared
    assert calls == ["multilingual-e5-small"]


def test_empty_name():
    with pytest.raises(ModelError, match="empty model name"):
        resolve_model("  ")
