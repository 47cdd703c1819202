"""The tiny offline stand-ins of seq2seq backbones (polyret.encode.tiny): each loads with transformers as its
family's model class and tokenizer, with the family's language codes, and encodes as CRISS embeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyret.encode.seq2seq import LanguageTokens, Seq2SeqEncoder, language_token_ids
from polyret.encode.tiny import MARKER, build_tiny_backbone

pytestmark = pytest.mark.usefixtures("single_torch_thread")

# model id -> (model class, tokenizer class, language codes it must know, a code of another family it must not)
FAMILIES = {
    "facebook/mbart-large-cc25": ("MBartForConditionalGeneration", "MBartTokenizer", ["en_XX", "de_DE"], "sw_KE"),
    "facebook/mbart-large-50-many-to-many-mmt": (
        "MBartForConditionalGeneration",
        "MBart50Tokenizer",
        ["en_XX", "sw_KE", "xh_ZA"],
        "eng_Latn",
    ),
    "google/mt5-base": ("MT5ForConditionalGeneration", "T5Tokenizer", [], "en_XX"),
    "facebook/nllb-200-distilled-600M": (
        "M2M100ForConditionalGeneration",
        "NllbTokenizer",
        ["eng_Latn", "swh_Latn", "zho_Hans"],
        "en_XX",
    ),
}


@pytest.mark.parametrize("model_id", FAMILIES)
def test_a_tiny_seq2seq_stand_in_is_its_family(model_id: str, tmp_path: Path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model_class, tokenizer_class, codes, foreign = FAMILIES[model_id]
    folder = build_tiny_backbone(model_id, tmp_path / "tiny")
    model, tokenizer = AutoModelForSeq2SeqLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    assert (type(model).__name__, type(tokenizer).__name__) == (model_class, tokenizer_class)
    assert model.config.vocab_size == len(tokenizer) and model.config.d_model == 32
    vocab = tokenizer.get_vocab()
    assert all(code in vocab for code in codes) and foreign not in vocab
    assert {vocab[code] for code in codes} <= language_token_ids(tokenizer)  # stripped from every encoder input
    assert json.loads((folder / MARKER).read_text(encoding="utf-8"))["stands_in_for"] == model_id

    encoder = Seq2SeqEncoder(folder, device="cpu")
    vectors = encoder.encode(["Habari ya asubuhi", "Good morning"])
    assert vectors.shape == (2, 32)
    ids = encoder.tokenize(["Good morning"])[0]
    assert ids and not set(ids) & language_token_ids(tokenizer)


@pytest.mark.parametrize(
    ("model_id", "target"),
    [("facebook/mbart-large-50", "sw_KE"), ("facebook/nllb-200-1.3B", "swh_Latn"), ("google/mt5-small", "<2sw>")],
)
def test_the_crisss_translation_marks_find_each_familys_target_code(model_id: str, target: str, tmp_path: Path):
    from transformers import AutoConfig, AutoTokenizer

    folder = build_tiny_backbone(model_id, tmp_path / "tiny")
    marks = LanguageTokens(AutoTokenizer.from_pretrained(folder), AutoConfig.from_pretrained(folder).model_type)
    assert marks.code("sw") == target
