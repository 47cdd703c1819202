"""Seq2seq encoders as retrievers: the CRISS embedding rules (PROTOCOLS.md §2.1), checked by hand on tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.tiny_mbart import TINY_MBART_CORPUS, build_tiny_mbart
from polyret.encode.base import Encoder
from polyret.encode.seq2seq import (
    STAND_IN_LABEL,
    LanguageTokens,
    Seq2SeqEncoder,
    build_standin,
    is_seq2seq_model,
    language_token_ids,
)

TEXTS = ["die Katze schläft auf der Matte", "a dog", "el gato duerme en la casa grande y bonita"]


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def tiny_mbart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_mbart(tmp_path_factory.mktemp("tiny-mbart"))


def _manual_mean(model_dir: Path, ids: list[int], layer: int | None = None) -> np.ndarray:
    """The rule written out: encoder only, given ids, mean over every position, L2-normalised."""
    from transformers import AutoModelForSeq2SeqLM

    encoder = AutoModelForSeq2SeqLM.from_pretrained(str(model_dir)).get_encoder().eval()
    with torch.no_grad():
        out = encoder(input_ids=torch.tensor([ids]), output_hidden_states=True)
    hidden = out.last_hidden_state if layer is None else out.hidden_states[layer]
    mean = hidden[0].mean(dim=0).numpy()
    return mean / np.linalg.norm(mean)


def test_mbart_strips_language_code_and_keeps_eos(tiny_mbart):
    encoder = Seq2SeqEncoder(tiny_mbart, device="cpu", precision="fp32")
    tokenizer = encoder.tokenizer
    raw = tokenizer(TEXTS[0])["input_ids"]
    assert tokenizer.convert_ids_to_tokens(raw[-2:]) == ["</s>", "en_XX"]  # what HF mBART-cc25 feeds by default
    ids = encoder.tokenize([TEXTS[0]])[0]
    assert ids == raw[:-1]
    assert ids[-1] == tokenizer.eos_token_id
    assert not set(ids) & language_token_ids(tokenizer)
    # the source language set on the tokenizer must not matter
    tokenizer.src_lang = "de_DE"
    assert encoder.tokenize([TEXTS[0]])[0] == ids


def test_mbart_vectors_equal_manual_mean_and_ignore_padding(tiny_mbart):
    encoder = Seq2SeqEncoder(tiny_mbart, device="cpu", precision="fp32")
    vectors = encoder.encode(TEXTS, show_progress=False, batch_size=3)  # one padded batch of 3 lengths
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    for text, vector in zip(TEXTS, vectors, strict=True):
        ids = encoder.tokenizer(text)["input_ids"][:-1]  # drop the trailing language code by hand, keep </s>
        np.testing.assert_allclose(vector, _manual_mean(tiny_mbart, ids), atol=1e-5)
        alone = encoder.encode([text], show_progress=False)[0]
        np.testing.assert_allclose(vector, alone, atol=1e-5)  # pad positions excluded
    # including the language code, or dropping </s>, gives different vectors
    ids = encoder.tokenizer(TEXTS[0])["input_ids"]
    assert not np.allclose(vectors[0], _manual_mean(tiny_mbart, ids), atol=1e-4)
    assert not np.allclose(vectors[0], _manual_mean(tiny_mbart, ids[:-2]), atol=1e-4)


def test_layer_option_and_protocol(tiny_mbart):
    encoder = Seq2SeqEncoder(tiny_mbart, layer=1, device="cpu", precision="fp32")
    ids = encoder.tokenize([TEXTS[1]])[0]
    np.testing.assert_allclose(
        encoder.encode([TEXTS[1]], show_progress=False)[0], _manual_mean(tiny_mbart, ids, 1), atol=1e-5
    )
    last = Seq2SeqEncoder(tiny_mbart, device="cpu", precision="fp32")
    assert isinstance(last, Encoder)
    assert last.dim == 32 and last.fingerprint and last.describe()["dim"] == 32
    assert last._encoder is None  # identity and shape come from the folder: cache hits never load the weights
    assert encoder.fingerprint != last.fingerprint
    assert last.describe()["layer"] == "last" and "label" not in last.describe()
    # layer = number of layers is the last layer, i.e. after mBART's final encoder layer norm
    final = Seq2SeqEncoder(tiny_mbart, layer=2, device="cpu", precision="fp32")
    np.testing.assert_allclose(
        final.encode(TEXTS, show_progress=False), last.encode(TEXTS, show_progress=False), atol=1e-6
    )
    assert is_seq2seq_model(tiny_mbart)


def test_mbart50_style_prefix_language_code_is_stripped(tmp_path):
    from transformers import MBart50Tokenizer

    model_dir = build_tiny_mbart(tmp_path / "m50")
    base = Seq2SeqEncoder(model_dir, device="cpu", precision="fp32")
    vocab = [tuple(entry) for entry in base.tokenizer._vocab]
    tokenizer = MBart50Tokenizer(vocab=vocab, src_lang="de_DE", tgt_lang="en_XX")
    assert tokenizer.convert_ids_to_tokens(tokenizer("a dog")["input_ids"])[0] == "de_DE"
    tokenizer.save_pretrained(model_dir)
    encoder = Seq2SeqEncoder(model_dir, device="cpu", precision="fp32")
    ids = encoder.tokenize(["a dog"])[0]
    assert ids == tokenizer("a dog")["input_ids"][1:]
    marks = LanguageTokens(encoder.tokenizer, "mbart")
    label = marks.label_ids(["ein Hund"], "de", 32)[0]
    assert encoder.tokenizer.convert_ids_to_tokens(label)[0] == "de_DE"  # mBART-50: target starts with its code
    assert marks.generate_kwargs("de") == {"forced_bos_token_id": label[0]}


def test_mbart_cc25_labels_open_the_decoder_with_the_target_language(tiny_mbart):
    from transformers import AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq

    encoder = Seq2SeqEncoder(tiny_mbart, device="cpu", precision="fp32")
    marks = LanguageTokens(encoder.tokenizer, "mbart")
    label = marks.label_ids(["ein Hund"], "de", 32)[0]
    assert encoder.tokenizer.convert_ids_to_tokens(label[-2:]) == ["</s>", "de_DE"]
    model = AutoModelForSeq2SeqLM.from_pretrained(str(tiny_mbart))
    source = marks.source_ids(["a dog"], 32)[0]
    batch = DataCollatorForSeq2Seq(encoder.tokenizer, model=model)([{"input_ids": source, "labels": label}])
    assert encoder.tokenizer.convert_ids_to_tokens(int(batch["decoder_input_ids"][0, 0])) == "de_DE"
    assert source == encoder.tokenize(["a dog"])[0]  # training input == embedding input: no language token
    assert marks.generate_kwargs("de") == {"decoder_start_token_id": label[-1]}


def test_standin_from_sentence_encoder_reproduces_it_and_is_labelled(tiny_model_dir, tmp_path):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq

    standin = build_standin(tiny_model_dir, tmp_path / "standin", ["de", "en"])
    encoder = Seq2SeqEncoder(standin, device="cpu", precision="fp32")
    described = encoder.describe()
    assert described["label"] == STAND_IN_LABEL and described["stand_in"] is True
    reference = SentenceTransformer(str(tiny_model_dir), device="cpu").encode(TINY_MBART_CORPUS)
    np.testing.assert_allclose(encoder.encode(TINY_MBART_CORPUS, show_progress=False), reference, atol=1e-5)
    marks = LanguageTokens(encoder.tokenizer, "encoder-decoder")
    assert marks.scheme == "tag"
    label = marks.label_ids(["ein Hund"], "de", 32)[0]
    assert encoder.tokenizer.convert_ids_to_tokens(label[0]) == "<2de>"
    assert label[-1] == encoder.tokenizer.sep_token_id
    model = AutoModelForSeq2SeqLM.from_pretrained(str(standin))
    batch = DataCollatorForSeq2Seq(encoder.tokenizer, model=model)([{"input_ids": [5, 6], "labels": label}])
    assert batch["decoder_input_ids"][0, :2].tolist() == [model.config.decoder_start_token_id, label[0]]
    assert build_standin(tiny_model_dir, tmp_path / "standin") == tmp_path / "standin"  # idempotent


def test_not_a_seq2seq_model(tiny_model_dir):
    from polyret.errors import ModelError

    assert not is_seq2seq_model(tiny_model_dir)
    with pytest.raises(ModelError):
        Seq2SeqEncoder(tiny_model_dir.parent / "hf")
