"""Tiny randomly initialised stand-ins of known backbones, built offline, for smoke runs (``polyret compare --smoke``).

Each stand-in keeps its backbone's architecture family and module stack, so every code path a real run takes is
taken: XLM-R → ``XLMRobertaModel`` + mean pooling; LaBSE → ``BertModel`` + CLS pooling + Dense + Normalize;
multilingual-e5 → ``BertModel`` + mean pooling + Normalize with its ``query: ``/``passage: `` prompts; mBART-cc25 →
``MBartForConditionalGeneration`` with mBART's language codes; mBART-50 → the same with MBart50Tokenizer's codes;
mT5 → ``MT5ForConditionalGeneration``; NLLB-200 → ``M2M100ForConditionalGeneration`` with NllbTokenizer's FLORES
codes. Widths are 32, depth 2; the vocabulary is the real XLM-R SentencePiece tokenizer the embedded e5 model ships
(``tokenizer.json``), cut to its 8,000 most frequent pieces. Scores of a stand-in mean nothing; that a run finishes
with it means the study can start.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polyret.encode.embedded import get_embedded, locate_tokenizer
from polyret.errors import ModelError

HIDDEN, LAYERS, HEADS, VOCAB = 32, 2, 2, 8_000
MARKER = "polyret_tiny.json"
#: the specials in fairseq's order, ids 0-3 of the XLM-R, mBART and NLLB vocabularies
FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
#: known model ids (lower case) -> stand-in family
KNOWN_MODELS: dict[str, str] = {
    "facebookai/xlm-roberta-large": "xlm-roberta",
    "facebookai/xlm-roberta-base": "xlm-roberta",
    "xlm-roberta-large": "xlm-roberta",
    "xlm-roberta-base": "xlm-roberta",
    "sentence-transformers/labse": "labse",
    "multilingual-e5-small": "e5",
    "intfloat/multilingual-e5-small": "e5",
    "intfloat/multilingual-e5-base": "e5",
    "intfloat/multilingual-e5-large": "e5",
    "facebook/mbart-large-cc25": "mbart",
    "facebook/mbart-large-50": "mbart-50",
    "facebook/mbart-large-50-many-to-many-mmt": "mbart-50",
    "facebook/mbart-large-50-one-to-many-mmt": "mbart-50",
    "facebook/mbart-large-50-many-to-one-mmt": "mbart-50",
    "google/mt5-small": "mt5",
    "google/mt5-base": "mt5",
    "google/mt5-large": "mt5",
    "facebook/nllb-200-distilled-600m": "nllb",
    "facebook/nllb-200-distilled-1.3b": "nllb",
    "facebook/nllb-200-1.3b": "nllb",
    "facebook/nllb-200-3.3b": "nllb",
}
#: a local model's config.json ``model_type`` -> stand-in family (an M2M100 folder gets NLLB's language codes: the
#: CRISS code reads either family's codes from its tokenizer)
MODEL_TYPES = {"xlm-roberta": "xlm-roberta", "bert": "e5", "mbart": "mbart", "mt5": "mt5", "m2m_100": "nllb"}


def tiny_family(model: str) -> str:
    """The stand-in family of ``model`` (a known id, or a local folder by its ``model_type``); one-line error else."""
    family = KNOWN_MODELS.get(model.lower())
    config = Path(model) / "config.json"
    if family is None and config.is_file():
        family = MODEL_TYPES.get(json.loads(config.read_text(encoding="utf-8")).get("model_type", ""))
    if family is None:
        known = ", ".join(sorted({key for key in KNOWN_MODELS if "/" in key}))
        raise ModelError(f"--smoke: no offline tiny stand-in for model {model!r}; known: {known}")
    return family


def build_tiny_backbone(model: str, target: Path) -> Path:
    """A tiny stand-in of ``model`` in ``target`` (reused when already built there); return its folder."""
    family = tiny_family(model)
    marker = target / MARKER
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")).get("family") == family:
        return target
    BUILDERS[family](target)
    marker.write_text(json.dumps({"family": family, "stands_in_for": model}), encoding="utf-8")
    return target


def _tokenizer_file(target: Path) -> Path:
    """The embedded e5's XLM-R Unigram tokenizer cut to its first ``VOCAB`` pieces (specials first, then by
    frequency): every script still tokenizes (rare characters become ``<unk>``) and the embeddings stay small."""
    spec = json.loads(locate_tokenizer(get_embedded("multilingual-e5-small")).read_text(encoding="utf-8"))
    spec["model"]["vocab"] = spec["model"]["vocab"][:VOCAB]
    spec["added_tokens"] = [token for token in spec["added_tokens"] if token["id"] < VOCAB]
    path = target / "tokenizer-source.json"
    target.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    return path


def _sentence_encoder(target: Path, architecture: str, pooling: str, dense: bool, prompts: dict[str, str]) -> None:
    """Transformer + pooling (+ Dense) + Normalize, saved as a sentence-transformers folder."""
    import torch  # heavy: only a smoke run builds models
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    torch.manual_seed(0)
    tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(_tokenizer_file(target)), model_max_length=512)
    shape = {
        "vocab_size": len(tokenizer),
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": 2 * HIDDEN,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if architecture == "xlm-roberta":
        backbone = XLMRobertaModel(XLMRobertaConfig(max_position_embeddings=514, **shape))
    else:
        backbone = BertModel(BertConfig(max_position_embeddings=512, **shape))
    hf_dir = target / "hf"
    backbone.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=256)
    modules = [transformer, Pooling(HIDDEN, pooling_mode=pooling)]
    if dense:
        modules.append(Dense(HIDDEN, HIDDEN, activation_function=torch.nn.Tanh()))
    model = SentenceTransformer(modules=[*modules, Normalize()], device="cpu", prompts=prompts or None)
    model.save(str(target))


def _pieces(target: Path) -> list[tuple[str, float]]:
    """The cut XLM-R Unigram pieces without its four specials: each seq2seq tokenizer puts its own in front."""
    pieces = json.loads(_tokenizer_file(target).read_text(encoding="utf-8"))["model"]["vocab"]
    return [(piece, score) for piece, score in pieces if piece not in FAIRSEQ_SPECIALS]


def _save_seq2seq(target: Path, model_class: Any, config: Any, tokenizer: Any) -> None:
    import torch  # heavy: only a smoke run builds models

    torch.manual_seed(0)
    model_class(config).save_pretrained(target)
    tokenizer.save_pretrained(target)


def _bart_shape(tokenizer: Any) -> dict[str, Any]:
    """The config keys that mBART and M2M100/NLLB share, at the stand-in's size, with the tokenizer's specials."""
    return {
        "vocab_size": len(tokenizer),
        "d_model": HIDDEN,
        "encoder_layers": LAYERS,
        "decoder_layers": LAYERS,
        "encoder_attention_heads": HEADS,
        "decoder_attention_heads": HEADS,
        "encoder_ffn_dim": 2 * HIDDEN,
        "decoder_ffn_dim": 2 * HIDDEN,
        "max_position_embeddings": 512,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "decoder_start_token_id": tokenizer.eos_token_id,
        "scale_embedding": True,
    }


def _mbart(target: Path, fifty: bool = False) -> None:
    """MBartForConditionalGeneration with mBART-cc25's language codes (MBartTokenizer adds them to the vocabulary),
    or mBART-50's (MBart50Tokenizer, which orders the pieces as fairseq does and appends its 52 codes)."""
    # heavy: only a smoke run builds models
    from transformers import MBart50Tokenizer, MBartConfig, MBartForConditionalGeneration, MBartTokenizer

    if fifty:  # MBart50Tokenizer takes SentencePiece's order (<unk>, <s>, </s>, pieces) and reorders it
        specials, tokenizer_class = ["<unk>", "<s>", "</s>"], MBart50Tokenizer
    else:
        specials, tokenizer_class = list(FAIRSEQ_SPECIALS), MBartTokenizer
    vocab = [*((special, 0.0) for special in specials), *_pieces(target)]
    tokenizer = tokenizer_class(vocab=vocab, src_lang="en_XX", tgt_lang="de_DE", model_max_length=512)
    _save_seq2seq(target, MBartForConditionalGeneration, MBartConfig(**_bart_shape(tokenizer)), tokenizer)


def _nllb(target: Path) -> None:
    """M2M100ForConditionalGeneration with NLLB-200's FLORES codes (``eng_Latn``; NllbTokenizer adds them). NLLB's
    tokenizer is a BPE: given the XLM-R pieces without merges it splits words into their characters, enough here."""
    # heavy: only a smoke run builds models
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    pieces = [*FAIRSEQ_SPECIALS, *(piece for piece, _ in _pieces(target))]
    vocab = {piece: index for index, piece in enumerate(pieces)}
    tokenizer = NllbTokenizer(vocab=vocab, merges=[], src_lang="eng_Latn", tgt_lang="deu_Latn", model_max_length=512)
    _save_seq2seq(target, M2M100ForConditionalGeneration, M2M100Config(**_bart_shape(tokenizer)), tokenizer)


def _mt5(target: Path) -> None:
    """MT5ForConditionalGeneration with T5's specials (no language codes: the CRISS code adds ``<2xx>`` tags)."""
    # heavy: only a smoke run builds models
    from transformers import MT5Config, MT5ForConditionalGeneration, T5Tokenizer

    tokenizer = T5Tokenizer(vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *_pieces(target)])
    config = MT5Config(
        vocab_size=len(tokenizer),
        d_model=HIDDEN,
        d_kv=HIDDEN // HEADS,
        d_ff=2 * HIDDEN,
        num_layers=LAYERS,
        num_heads=HEADS,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    _save_seq2seq(target, MT5ForConditionalGeneration, config, tokenizer)


BUILDERS: dict[str, Callable[[Path], None]] = {
    "xlm-roberta": lambda target: _sentence_encoder(target, "xlm-roberta", "mean", False, {}),
    "labse": lambda target: _sentence_encoder(target, "bert", "cls", True, {}),
    "e5": lambda target: _sentence_encoder(
        target, "bert", "mean", False, {"query": "query: ", "passage": "passage: ", "document": "passage: "}
    ),
    "mbart": _mbart,
    "mbart-50": lambda target: _mbart(target, fifty=True),
    "mt5": _mt5,
    "nllb": _nllb,
}
