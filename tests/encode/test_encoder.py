"""SentenceTransformerEncoder on the tiny model (plumbing) and on the real embedded model (integration)."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
import torch

from polyret.encode.base import Encoder
from polyret.encode.encoder import SentenceTransformerEncoder, default_prefixes, load_encoder, weights_fingerprint
from polyret.errors import ConfigError

TEXTS = [
    "the cat sat on the mat",
    "der Hund läuft im Park und die Katze schläft auf dem Sofa, während es draußen regnet",
    "猫",
    "кошка спит на ковре",
    "paka analala kwenye mkeka",
    "el gato duerme en la casa grande de la familia",
    "وقطة تنام على السجادة",
    "a",
    "the quick brown fox jumps over the lazy dog " * 3,
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    # fp32: these tests compare vectors at 1e-5, which bf16 (what `auto` picks on CPUs with native bf16) is not
    return SentenceTransformerEncoder(str(tiny_model_dir), tiny_model_dir, device="cpu", precision="fp32")


def _manual(encoder, texts, prefix="", layer=None, pooling="mean", skip_special=False):
    """Reference: one text at a time, no padding, straight from the Hugging Face model."""
    model = encoder._load()
    hf, tokenizer = model[0].model, model.tokenizer
    rows = []
    for text in texts:
        batch = tokenizer([prefix + text], return_tensors="pt", truncation=True, max_length=encoder.max_length)
        with torch.no_grad():
            out = hf(
                **{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask")}, output_hidden_states=True
            )
        hidden = (out.last_hidden_state if layer is None else out.hidden_states[layer])[0]
        if pooling == "cls":
            vector = hidden[0]
        else:
            ids = batch["input_ids"][0].tolist()
            keep = [i for i, t in enumerate(ids) if not (skip_special and t in tokenizer.all_special_ids)]
            vector = hidden[keep].mean(0)
        rows.append(torch.nn.functional.normalize(vector, dim=0).numpy())
    return np.stack(rows)


def test_protocol_shape_dtype_norm(tiny):
    assert isinstance(tiny, Encoder)
    vectors = tiny.encode(TEXTS, show_progress=False)
    assert vectors.shape == (len(TEXTS), 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert tiny.dim == 32


def test_length_sorted_batches_keep_input_order(tiny):
    batched = tiny.encode(TEXTS, batch_size=3, show_progress=False)
    np.testing.assert_allclose(batched, _manual(tiny, TEXTS), atol=1e-5)
    np.testing.assert_allclose(tiny.encode(TEXTS, batch_size=1, show_progress=False), batched, atol=1e-5)
    np.testing.assert_allclose(tiny.encode(TEXTS[::-1], batch_size=4, show_progress=False), batched[::-1], atol=1e-5)


def test_equals_sentence_transformers_encode(tiny, tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(tiny_model_dir), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(tiny.encode(TEXTS, show_progress=False), reference, atol=1e-5)


def test_prefix_is_prepended(tiny):
    with_prefix = tiny.encode(TEXTS[:3], prefix="query: ", show_progress=False)
    np.testing.assert_allclose(
        with_prefix, tiny.encode(["query: " + t for t in TEXTS[:3]], show_progress=False), atol=1e-6
    )
    assert not np.allclose(with_prefix, tiny.encode(TEXTS[:3], show_progress=False))


def test_layer_cls_and_special_token_options(tiny_model_dir):
    middle = SentenceTransformerEncoder("tiny", tiny_model_dir, layer=1, device="cpu", precision="fp32")
    np.testing.assert_allclose(middle.encode(TEXTS, show_progress=False), _manual(middle, TEXTS, layer=1), atol=1e-5)
    embeddings = SentenceTransformerEncoder("tiny", tiny_model_dir, layer=0, device="cpu", precision="fp32")
    np.testing.assert_allclose(
        embeddings.encode(TEXTS, show_progress=False), _manual(embeddings, TEXTS, layer=0), atol=1e-5
    )
    cls = SentenceTransformerEncoder("tiny", tiny_model_dir, pooling="cls", device="cpu", precision="fp32")
    np.testing.assert_allclose(cls.encode(TEXTS, show_progress=False), _manual(cls, TEXTS, pooling="cls"), atol=1e-5)
    content = SentenceTransformerEncoder(
        "tiny", tiny_model_dir, pool_special_tokens=False, device="cpu", precision="fp32"
    )
    np.testing.assert_allclose(
        content.encode(TEXTS, show_progress=False), _manual(content, TEXTS, skip_special=True), atol=1e-5
    )


def test_max_length_truncates(tiny):
    long = ["word " * 200]
    assert len(tiny.tokenize(long, max_length=16)[0]) == 16
    np.testing.assert_allclose(
        tiny.encode(long, max_length=16, show_progress=False),
        tiny.encode(
            [tiny._load().tokenizer.decode(tiny.tokenize(long, 16)[0][1:-1])], max_length=16, show_progress=False
        ),
        atol=1e-4,
    )


def test_bad_options():
    with pytest.raises(ConfigError, match="pooling 'max'"):
        SentenceTransformerEncoder("x", "unused", pooling="max")
    with pytest.raises(ConfigError, match="cls"):
        SentenceTransformerEncoder("x", "unused", pooling="cls", pool_special_tokens=False)


def test_empty_input_and_non_string(tiny):
    assert tiny.encode([], show_progress=False).shape == (0, 32)
    with pytest.raises(TypeError, match="not one string"):
        tiny.encode("one text")
    with pytest.raises(TypeError, match="text 1 is int"):
        tiny.encode(["a", 3])


def test_fingerprint_tracks_settings_and_weights(tiny_model_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    base = SentenceTransformerEncoder("tiny", copy).fingerprint
    assert SentenceTransformerEncoder("tiny", copy).fingerprint == base  # stable
    assert SentenceTransformerEncoder("tiny", copy, layer=1).fingerprint != base
    assert SentenceTransformerEncoder("tiny", copy, pooling="cls").fingerprint != base
    assert SentenceTransformerEncoder("tiny", copy, max_length=16).fingerprint != base
    assert SentenceTransformerEncoder("tiny", copy, pool_special_tokens=False).fingerprint != base
    weights = next(copy.rglob("model.safetensors"))
    stat = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one changed weight, same size, same mtime: the sampled bytes notice
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert SentenceTransformerEncoder("tiny", copy).fingerprint != base
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))  # back to the old bytes, but rewritten: the mtime notices
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert SentenceTransformerEncoder("tiny", copy).fingerprint != base


def test_fingerprint_is_cheap(tiny_model_dir):
    start = time.perf_counter()
    weights_fingerprint(tiny_model_dir, {})
    assert time.perf_counter() - start < 0.5


def test_describe_and_lazy_loading(tiny_model_dir):
    encoder = SentenceTransformerEncoder("tiny", tiny_model_dir)
    assert encoder.dim == 32 and encoder.max_length == 128 and encoder.native_pooling == "mean"
    assert encoder._model is None  # all of the above came from the folder's JSON files
    described = encoder.describe()
    assert described["model"] == "tiny" and described["path"] == str(tiny_model_dir)
    assert described["pooling"] == "mean" and described["layer"] == "last" and described["dim"] == 32
    assert described["max_length"] == 128 and described["fingerprint"] == encoder.fingerprint
    assert {"query_prefix", "passage_prefix", "revision", "pool_special_tokens"} <= set(described)


def test_default_prefixes():
    assert default_prefixes("intfloat/multilingual-e5-small", {}) == ("query: ", "passage: ")
    assert default_prefixes("xlm-roberta-base", {}) == ("", "")
    assert default_prefixes("any", {"query": "Q ", "document": "D "}) == ("Q ", "D ")


def test_load_encoder_wraps_in_cache_and_dispatches(tiny_model_dir, polyret_home):
    from polyret.encode.cache import CachedEncoder

    cached = load_encoder(str(tiny_model_dir), device="cpu")
    assert isinstance(cached, CachedEncoder) and isinstance(cached, Encoder)
    assert isinstance(cached.inner, SentenceTransformerEncoder)
    plain = load_encoder(str(tiny_model_dir), device="cpu", cache=False, layer=1)
    assert isinstance(plain, SentenceTransformerEncoder) and plain.layer == 1


def test_registry_routes_seq2seq_folders(tmp_path):
    from polyret.encode.encoder import encoder_kind

    folder = tmp_path / "mbart"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "mbart", "is_encoder_decoder": true}')
    assert encoder_kind(folder).name == "seq2seq"
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text('{"model_type": "bert"}')
    assert encoder_kind(bert).name == "sentence-transformers"


# ------------------------------------------------------------------------------------------------- integration
@pytest.mark.integration
def test_e5_prefixes_and_cross_lingual_sanity(e5_model_dir):
    encoder = load_encoder("multilingual-e5-small", cache=False, device="cpu")
    assert (encoder.query_prefix, encoder.passage_prefix) == ("query: ", "passage: ")
    assert encoder.dim == 384 and encoder.max_length == 512
    english = ["The cat is sleeping on the mat.", "I like to drink coffee in the morning.", "The train is late."]
    german = ["Morgens trinke ich gern Kaffee.", "Der Zug hat Verspätung.", "Die Katze schläft auf der Matte."]
    scores = (
        encoder.encode(english, prefix="query: ", show_progress=False)
        @ encoder.encode(german, prefix="query: ", show_progress=False).T
    )
    assert scores.argmax(axis=1).tolist() == [2, 0, 1]
