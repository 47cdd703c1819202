"""The onnx backend against the torch path: same tokens, pooling, prefixes, max length and normalisation (tiny model),
exported once and reused; and on the embedded e5-small (integration)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from polyret.encode import onnx_backend
from polyret.encode.encoder import SentenceTransformerEncoder, load_encoder
from polyret.errors import ConfigError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnxruntime/onnx not installed (pip install 'polyret[fast]')",
)

TEXTS = [
    "the cat sat on the mat",
    "der Hund läuft im Park und die Katze schläft auf dem Sofa, während es draußen regnet",
    "猫",
    "кошка спит на ковре",
    "el gato duerme en la casa grande de la familia " * 6,  # longer than max_length below: truncated alike
    "a",
]


def _pair(model_dir, precision="fp32", **options):
    torch_encoder = SentenceTransformerEncoder("tiny", model_dir, device="cpu", precision="fp32", **options)
    onnx_encoder = SentenceTransformerEncoder(
        "tiny", model_dir, device="cpu", precision=precision, backend="onnx", **options
    )
    return torch_encoder, onnx_encoder


@pytest.mark.parametrize(
    "options",
    [{}, {"pooling": "cls"}, {"pool_special_tokens": False}, {"max_length": 12}],
    ids=["mean", "cls", "mean-without-specials", "max-length-12"],
)
def test_fp32_onnx_matches_torch(tiny_model_dir, polyret_home, options):
    torch_encoder, onnx_encoder = _pair(tiny_model_dir, **options)
    for prefix in ("", "query: "):
        expected = torch_encoder.encode(TEXTS, prefix=prefix, batch_size=4, show_progress=False)
        got = onnx_encoder.encode(TEXTS, prefix=prefix, batch_size=4, show_progress=False)
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=2e-5)


def test_int8_onnx_is_close_and_recorded(tiny_model_dir, polyret_home):
    torch_encoder, int8 = _pair(tiny_model_dir, precision="int8")
    expected = torch_encoder.encode(TEXTS, prefix="query: ", show_progress=False)
    got = int8.encode(TEXTS, prefix="query: ", show_progress=False)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (got * expected).sum(axis=1).min() > 0.98
    described = int8.describe()
    assert described["precision"] == "int8"
    assert described["backend"]["name"] == "onnx" and described["backend"]["quantization"]["weights"] == "QInt8"
    assert len({torch_encoder.fingerprint, int8.fingerprint, _pair(tiny_model_dir)[1].fingerprint}) == 3


def test_exported_once_and_reused(tiny_model_dir, polyret_home, monkeypatch):
    first = SentenceTransformerEncoder("tiny", tiny_model_dir, device="cpu", precision="int8", backend="onnx")
    vectors = first.encode(TEXTS, show_progress=False)
    files = sorted(p.relative_to(polyret_home) for p in (polyret_home / "onnx").rglob("*") if p.is_file())
    assert [p.parts[-2:] for p in files] == [("fp32", "model.onnx"), ("int8", "model.onnx")]

    def refuse(*_args, **_kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_backend, "_export", refuse)
    monkeypatch.setattr(onnx_backend, "_quantize", refuse)
    again = SentenceTransformerEncoder("tiny", tiny_model_dir, device="cpu", precision="int8", backend="onnx")
    np.testing.assert_array_equal(again.encode(TEXTS, show_progress=False), vectors)


def test_failed_export_leaves_nothing_behind(tiny_model_dir, polyret_home, monkeypatch):
    def broken(_transformer, path):
        path.write_bytes(b"half a graph")
        raise RuntimeError("killed mid-export")

    monkeypatch.setattr(onnx_backend, "_export", broken)
    encoder = SentenceTransformerEncoder("tiny", tiny_model_dir, device="cpu", backend="onnx")
    with pytest.raises(RuntimeError):
        encoder.encode(TEXTS, show_progress=False)
    assert not [p for p in (polyret_home / "onnx").rglob("*") if p.is_file()]


def test_onnx_refuses_what_it_cannot_do(tiny_model_dir):
    with pytest.raises(ConfigError, match="last layer"):
        SentenceTransformerEncoder("tiny", tiny_model_dir, backend="onnx", layer=1)
    with pytest.raises(ConfigError, match="CPU"):
        SentenceTransformerEncoder("tiny", tiny_model_dir, backend="onnx", device="cuda")
    with pytest.raises(ConfigError, match="bf16 needs --backend torch"):
        load_encoder(str(tiny_model_dir), backend="onnx", precision="bf16")


@pytest.mark.integration
def test_e5_small_onnx_against_torch(e5_model_dir, shared_data):
    """The embedded e5-small on 200 Tatoeba de/en pairs: fp32 onnx equals torch; int8 keeps the top-1 answers.

    Uses the session's $POLYRET_HOME, so the export (about a minute) is made once and reused by later runs.
    """
    from polyret.data.tatoeba import read_tatoeba_pair

    pair = read_tatoeba_pair("de")
    texts = [*pair.xx[:200], *pair.en[:200]]
    vectors = {}
    for precision, backend in (("fp32", "torch"), ("fp32", "onnx"), ("int8", "onnx")):
        encoder = SentenceTransformerEncoder(
            "multilingual-e5-small", e5_model_dir, device="cpu", precision=precision, backend=backend
        )
        vectors[precision, backend] = encoder.encode(texts, prefix=encoder.query_prefix, show_progress=False)
    reference = vectors["fp32", "torch"]
    np.testing.assert_allclose(vectors["fp32", "onnx"], reference, atol=1e-4)
    int8 = vectors["int8", "onnx"]
    assert (int8 * reference).sum(axis=1).mean() > 0.99

    def top1(v):
        return (v[:200] @ v[200:].T).argmax(axis=1)

    agreement = (top1(int8) == top1(reference)).mean()
    assert agreement >= 0.97, agreement
