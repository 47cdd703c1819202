"""A tiny mBART (d_model 32, 2+2 layers) with a locally trained Unigram vocabulary and real mBART language codes.

Built from configs only (no downloads): ``MBartTokenizer`` takes the trained vocabulary and adds the 25
mBART-cc25 language codes itself, so ``src_lang``/``tgt_lang`` and the ``</s> xx_XX`` suffix behave as with
``facebook/mbart-large-cc25``.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_MBART_CORPUS = [
    "the cat sleeps on the mat",
    "die Katze schläft auf der Matte",
    "a dog runs in the park",
    "ein Hund läuft im Park",
    "the house is small",
    "das Haus ist klein",
    "i like green tea",
    "ich mag grünen Tee",
    "el gato duerme en la casa",
    "кошка спит на ковре",
]


def build_tiny_mbart(target: Path, corpus: list[str] | None = None, vocab_size: int = 300, seed: int = 0) -> Path:
    """Save a randomly initialised tiny ``MBartForConditionalGeneration`` and its tokenizer to ``target``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import MBartConfig, MBartForConditionalGeneration, MBartTokenizer

    torch.manual_seed(seed)
    raw = Tokenizer(models.Unigram())
    raw.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>"
    )
    raw.train_from_iterator((corpus or TINY_MBART_CORPUS) * 4, trainer=trainer)
    vocab = _canonical_vocab(json.loads(raw.to_str())["model"]["vocab"], specials=4)
    tokenizer = MBartTokenizer(vocab=vocab, src_lang="en_XX", tgt_lang="de_DE", model_max_length=128)
    config = MBartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        scale_embedding=True,
    )
    model = MBartForConditionalGeneration(config)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def _canonical_vocab(vocab: list[list], specials: int) -> list[tuple[str, float]]:
    """The trained pieces and scores, identical from run to run.

    The Unigram trainer iterates Rust hash maps, whose order is randomised per process: its scores differ in the
    last bits, and the characters it appends get scores -0.0001 apart in that random order. A piece's id is its
    place, so every build of the "same" tiny model had other token ids (and mined other pairs). Scores rounded
    to 0.01 with ties ordered by piece remove both effects.
    """
    head = [(piece, float(score)) for piece, score in vocab[:specials]]
    rest = sorted(((piece, round(float(score), 2)) for piece, score in vocab[specials:]), key=lambda e: (-e[1], e[0]))
    return head + rest
