"""polyret.precision: how ``auto`` resolves (simulated CPUs), what is recorded, and that the cache keeps precisions
apart; the bf16 path of the tiny model against its fp32 vectors."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from polyret import precision
from polyret.encode.cache import CachedEncoder, EmbeddingCache
from polyret.encode.encoder import SentenceTransformerEncoder, weights_fingerprint
from polyret.errors import ConfigError

TEXTS = ["the cat sat on the mat", "der Hund läuft im Park", "猫", "кошка спит на ковре", "a"]
NO_BF16_CPU = {"architecture": "x86_64", "avx2": True, "avx512_f": True, "avx512_bf16": False, "amx_bf16": False}


@pytest.fixture
def simulated_cpu(monkeypatch: pytest.MonkeyPatch):
    """Replace torch's CPU capability table; the fp32 fallback may log again in each test."""
    monkeypatch.setattr(precision, "_fallback_logged", set())

    def use(capabilities: dict) -> None:
        monkeypatch.setattr(precision, "cpu_capabilities", lambda: capabilities)

    return use


def test_auto_without_native_bf16_chooses_fp32_and_says_so_once(simulated_cpu, caplog):
    simulated_cpu(NO_BF16_CPU)
    with caplog.at_level(logging.INFO, logger="polyret.precision"):
        assert precision.resolve_precision("auto", "cpu") == "fp32"
        assert precision.resolve_precision("auto", "cpu") == "fp32"
        assert precision.resolve_train_precision("auto", "cpu") == "fp32"
    fallbacks = [r for r in caplog.records if "no native bf16" in r.getMessage()]
    assert len(fallbacks) == 1


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
def test_auto_with_native_bf16_chooses_bf16(simulated_cpu, caplog, flag):
    simulated_cpu({**NO_BF16_CPU, flag: True})
    with caplog.at_level(logging.INFO, logger="polyret.precision"):
        assert precision.resolve_precision("auto", "cpu") == "bf16"
    assert not caplog.records
    # transformers refuses bf16 without a bf16 GPU unless told the run is on the CPU
    assert precision.trainer_precision_flags("auto", "cpu") == {"bf16": True, "fp16": False, "use_cpu": True}
    assert precision.trainer_precision_flags("bf16", "cuda:0") == {"bf16": True, "fp16": False}


def test_this_cpu_agrees_with_the_kernels_flags():
    """torch's capability table against an independent source: the flags Linux reports for this CPU."""
    import platform
    from pathlib import Path

    cpuinfo = Path("/proc/cpuinfo")
    if platform.machine() != "x86_64" or not cpuinfo.is_file():
        pytest.skip("needs /proc/cpuinfo of an x86-64 Linux machine")
    flags = set(next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split())
    assert precision.cpu_has_native_bf16() == bool({"avx512_bf16", "amx_bf16"} & flags)


def test_explicit_precisions_and_backends():
    assert precision.resolve_precision("bf16", "cpu") == "bf16"
    assert precision.resolve_precision("fp32", "cpu") == "fp32"
    assert precision.resolve_precision("auto", "cpu", backend="onnx") == "fp32"
    assert precision.resolve_precision("int8", "cpu", backend="onnx") == "int8"
    assert precision.trainer_precision_flags("fp16") == {"bf16": False, "fp16": True}
    assert precision.trainer_precision_flags("fp32") == {"bf16": False, "fp16": False}
    for bad, backend in (("int8", "torch"), ("bf16", "onnx"), ("fp64", "torch"), ("fp32", "tensorrt")):
        with pytest.raises(ConfigError):
            precision.resolve_precision(bad, "cpu", backend=backend)
    with pytest.raises(ConfigError, match="int8 needs --backend onnx"):
        SentenceTransformerEncoder("x", "unused-id", precision="int8")
    with pytest.raises(ConfigError):
        precision.resolve_train_precision("int8")


def test_encoder_auto_follows_the_cpu(simulated_cpu, tiny_model_dir):
    simulated_cpu(NO_BF16_CPU)
    assert SentenceTransformerEncoder("tiny", tiny_model_dir, device="cpu").resolved_precision == "fp32"
    simulated_cpu({**NO_BF16_CPU, "avx512_bf16": True})
    assert SentenceTransformerEncoder("tiny", tiny_model_dir, device="cpu").resolved_precision == "bf16"


def test_fp32_fingerprint_is_the_one_earlier_versions_wrote(tiny_model_dir):
    """Caches and shard folders written before precisions existed (always fp32, torch) stay valid."""
    encoder = SentenceTransformerEncoder("tiny", tiny_model_dir, device="cpu", precision="fp32")
    before = {
        "kind": "sentence-transformers",
        "pooling": "native",
        "layer": None,
        "max_length": encoder.max_length,
        "pool_special_tokens": True,
        "normalize": True,
        "dtype": "float32",
    }
    assert encoder.fingerprint == weights_fingerprint(tiny_model_dir, before)


def test_bf16_is_recorded_and_keyed_apart(tiny_model_dir, polyret_home):
    fp32 = SentenceTransformerEncoder("tiny", tiny_model_dir, device="cpu", precision="fp32")
    bf16 = SentenceTransformerEncoder("tiny", tiny_model_dir, device="cpu", precision="bf16")
    assert fp32.describe()["precision"] == "fp32" and bf16.describe()["precision"] == "bf16"
    assert fp32.describe()["backend"] == bf16.describe()["backend"] == "torch"
    assert fp32.fingerprint != bf16.fingerprint

    CachedEncoder(fp32, EmbeddingCache(fp32.fingerprint)).encode(TEXTS, show_progress=False)
    asked: list[int] = []
    original = bf16.encode

    def counting(texts, **kwargs):
        asked.append(len(texts))
        return original(texts, **kwargs)

    bf16.encode = counting  # type: ignore[method-assign]
    vectors = CachedEncoder(bf16, EmbeddingCache(bf16.fingerprint)).encode(TEXTS, show_progress=False)
    assert asked == [len(TEXTS)]  # nothing answered from the fp32 entries
    assert vectors.dtype == np.float32


def test_bf16_vectors_are_fp32_rows_close_to_fp32(tiny_model_dir):
    fp32 = SentenceTransformerEncoder("tiny", tiny_model_dir, device="cpu", precision="fp32")
    bf16 = SentenceTransformerEncoder("tiny", tiny_model_dir, device="cpu", precision="bf16")
    a, b = fp32.encode(TEXTS, show_progress=False), bf16.encode(TEXTS, show_progress=False)
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.99  # bf16 keeps 8 bits of mantissa: close, but not equal
    assert not np.array_equal(a, b)  # the transformer did run in bf16
