"""Encoders of sequence-to-sequence models used as retrievers (CRISS, PROTOCOLS.md §2.1).

:class:`Seq2SeqEncoder` runs the **encoder only** of an mBART (cc25 / 50), M2M100 / NLLB, (m)T5 or
``EncoderDecoderModel`` checkpoint and turns its output into sentence vectors the CRISS way:

* the encoder input carries **no language token**: Hugging Face tokenizers add one (mBART-cc25 appends
  ``</s> en_XX``; mBART-50, M2M100 and NLLB prepend ``en_XX`` / ``__en__`` / ``eng_Latn``), so every
  language-code token is stripped after tokenization, and ``</s>`` (or ``[SEP]``) is kept;
* take the last layer (for mBART: after the encoder's final layer norm), or ``layer=k`` (``hidden_states[k]``,
  0 = embeddings; negative counts from the end);
* mean-pool over every non-pad position, **including** ``</s>``;
* pool and L2-normalise in fp32 (the encoder itself runs under bf16 autocast when ``precision`` resolves to bf16,
  :mod:`polyret.precision`; ``precision="fp32"`` keeps every step in fp32).

The same module knows how each model family marks the *target* language for translation training
(:class:`LanguageTokens`): mBART/M2M100/NLLB through their tokenizers' ``tgt_lang``; models without language
tokens (mT5, the ``EncoderDecoderModel`` stand-in) get added ``<2xx>`` tag tokens that open the target.

The offline stand-in (:func:`build_standin`) is an ``EncoderDecoderModel`` warm-started on both sides from a
BERT-architecture sentence encoder (the embedded multilingual-e5-small). Its cross-attention starts untrained;
everything it produces is labelled ``STAND_IN_LABEL``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polyret.data.languages import flores_code, get_language, mbart_code
from polyret.encode.batching import encode_length_sorted
from polyret.encode.identity import SIDECAR, weights_fingerprint
from polyret.encode.models import cached_snapshot, weights_readable
from polyret.errors import ModelError, PolyretError
from polyret.io import write_dir_atomically, write_json
from polyret.precision import DEFAULT_PRECISION, autocast, check_precision, default_device, resolve_precision

log = logging.getLogger(__name__)

STAND_IN_LABEL = "stand-in, not comparable with CRISS"
MBART_TYPES = frozenset({"mbart"})
M2M_TYPES = frozenset({"m2m_100", "nllb-moe"})
T5_TYPES = frozenset({"t5", "mt5", "umt5"})
ENCODER_DECODER_TYPES = frozenset({"encoder-decoder"})
SEQ2SEQ_TYPES = MBART_TYPES | M2M_TYPES | T5_TYPES | ENCODER_DECODER_TYPES

# Language-code tokens of the families we support: mBART ``en_XX``/``zh_CN``, NLLB ``eng_Latn``,
# M2M100 ``__en__``, and polyret's own ``<2en>`` tags.
_LANG_TOKEN_RE = re.compile(r"^(?:[a-z]{2,3}_[A-Z][A-Za-z]{1,3}|__[a-z]{2,3}(?:_[A-Za-z]+)?__|<2[A-Za-z_-]+>)$")
_DEFAULT_MAX_LENGTH = 256


def _model_config_path(path: Path) -> Path | None:
    config = path / "config.json"
    return config if config.is_file() else None


def is_seq2seq_model(model: str | Path) -> bool:
    """True when ``model`` is a local folder holding an encoder-decoder checkpoint this module can encode with."""
    config = _model_config_path(Path(model))
    if config is None:
        return False
    try:
        payload = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return payload.get("model_type") in SEQ2SEQ_TYPES or bool(payload.get("is_encoder_decoder"))


def read_sidecar(model_dir: str | Path) -> dict[str, Any]:
    """polyret's notes saved beside a seq2seq model: prefixes, stand-in label, base model; ``{}`` if absent."""
    sidecar = Path(model_dir) / SIDECAR
    if not sidecar.is_file():
        return {}
    return json.loads(sidecar.read_text(encoding="utf-8"))


def write_sidecar(model_dir: str | Path, payload: dict[str, Any]) -> None:
    write_json(Path(model_dir) / SIDECAR, payload)


def language_token_ids(tokenizer: Any) -> set[int]:
    """Ids of every language-code token the tokenizer knows (stripped from encoder inputs)."""
    ids: set[int] = set()
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for token_id, token in decoder.items():
        if _LANG_TOKEN_RE.match(str(token)):
            ids.add(int(token_id))
    for code_map in ("lang_code_to_id", "lang_token_to_id"):
        mapping = getattr(tokenizer, code_map, None)
        if isinstance(mapping, dict):
            ids.update(int(value) for value in mapping.values() if value is not None)
    return ids


def _load_tokenizer(path: str | Path) -> Any:
    # transformers loads only when this runs, not when seq2seq is imported
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as err:
        raise ModelError(
            f"{path}: cannot load a tokenizer ({err}); a seq2seq model folder needs its tokenizer files"
        ) from err


class Seq2SeqEncoder:
    """Sentence vectors from the encoder of a seq2seq model (see the module docstring for the exact rules).

    Args:
        model: a local model folder or a Hugging Face id (mBART-cc25/50, M2M100, NLLB, mT5, EncoderDecoderModel).
        layer: ``None`` for the last layer (after the final layer norm), else the index into ``hidden_states``.
        max_length: token cap of the encoder input (language tokens stripped first); default 256.
        device: ``cuda``/``cpu``; default cuda when available.
        precision: ``auto`` / ``fp32`` / ``bf16`` (:func:`polyret.precision.resolve_precision`).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        layer: int | None = None,
        max_length: int | None = None,
        device: str | None = None,
        precision: str = DEFAULT_PRECISION,
    ) -> None:
        # transformers loads only when this runs, not when seq2seq is imported
        from transformers import AutoConfig

        check_precision(precision)
        self.precision = precision
        self._resolved_precision: str | None = None
        self.model_name = str(model)
        local = Path(model)
        try:
            config = AutoConfig.from_pretrained(self.model_name)
        except (OSError, ValueError) as err:
            raise ModelError(f"{model}: cannot load a seq2seq model config ({err})") from err
        self.config = config
        self.model_type: str = config.model_type
        if self.model_type not in SEQ2SEQ_TYPES and not getattr(config, "is_encoder_decoder", False):
            raise ModelError(
                f"{model}: model type {self.model_type!r} is not an encoder-decoder; "
                f"use the sentence-transformers encoder instead"
            )
        self.device = device
        self.layer = layer
        positions = _max_positions(config)
        self.max_length = int(max_length or min(_DEFAULT_MAX_LENGTH, positions or _DEFAULT_MAX_LENGTH))
        self.sidecar = read_sidecar(local) if local.is_dir() else {}
        self.query_prefix: str = self.sidecar.get("query_prefix", "")
        self.passage_prefix: str = self.sidecar.get("passage_prefix", "")
        self.stand_in: bool = bool(self.sidecar.get("stand_in", False))
        self._location: Path | str = local if local.is_dir() else self.model_name
        self._fingerprint: str | None = None
        self._tokenizer: Any = None
        self._encoder: Any = None

    # -- lazy loading: an encoder whose vectors all come from the embedding cache never loads its weights -----
    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = _load_tokenizer(self.model_name)
            self._strip_ids = language_token_ids(self._tokenizer)
            self._pad_id = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else 0
        return self._tokenizer

    @property
    def encoder(self) -> Any:
        """The encoder stack (the decoder is dropped right after loading), fp32, in eval mode."""
        if self._encoder is None:
            # torch, transformers load only when this runs, not when seq2seq is imported
            import torch
            from transformers import AutoModelForSeq2SeqLM

            with weights_readable(self.model_name):
                full = AutoModelForSeq2SeqLM.from_pretrained(self.model_name, dtype=torch.float32)
            encoder = full.get_encoder()
            del full
            self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            self._encoder = encoder.to(self.device).eval()
        return self._encoder

    @property
    def resolved_precision(self) -> str:
        """The precision the encoder stack runs in (``auto`` resolved for the device)."""
        if self._resolved_precision is None:
            self._resolved_precision = resolve_precision(self.precision, self.device or default_device())
        return self._resolved_precision

    def _settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "kind": "seq2seq-encoder",
            "pooling": "mean-incl-eos",
            "layer": self.layer,
            "max_length": self.max_length,
            "lang_token": "stripped",
            "dtype": "float32",
        }
        if self.resolved_precision != "fp32":  # fp32 adds nothing: earlier fingerprints stay valid
            settings["precision"] = self.resolved_precision
        return settings

    @property
    def fingerprint(self) -> str:
        """The shared weights identity of ``polyret.encode.encoder`` (files, sizes, mtimes, samples) + settings."""
        if self._fingerprint is None:
            location = self._location
            if not isinstance(location, Path):  # a Hub id: identify the downloaded snapshot
                location = cached_snapshot(location) or location
            self._fingerprint = weights_fingerprint(location, self._settings())
        return self._fingerprint

    @property
    def dim(self) -> int:
        config = getattr(self.config, "encoder", None) or self.config  # EncoderDecoderModel nests its halves
        return int(getattr(config, "d_model", None) or config.hidden_size)

    def describe(self) -> dict[str, object]:
        described: dict[str, object] = {
            "model": self.model_name,
            "model_type": self.model_type,
            "encoder": "seq2seq",
            "pooling": "mean over non-pad positions incl. </s>, language token stripped",
            "layer": "last" if self.layer is None else self.layer,
            "max_length": self.max_length,
            "query_prefix": self.query_prefix,
            "passage_prefix": self.passage_prefix,
            "dim": self.dim,
            "dtype": "float32",
            "precision": self.resolved_precision,
            "backend": "torch",
            "fingerprint": self.fingerprint,
        }
        if self.sidecar.get("base_model"):
            described["base_model"] = self.sidecar["base_model"]
        if self.stand_in:
            described["label"] = STAND_IN_LABEL
            described["stand_in"] = True
        return described

    # -- tokenization ---------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """Token ids of each text as the encoder sees them: the tokenizer's specials minus language codes."""
        cap = int(max_length or self.max_length)
        tokenizer = self.tokenizer  # loads it (and the language-token ids) on first use
        # Tokenize with room for the language token(s) we strip, so the cap applies to what the encoder sees.
        raw = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=cap + 2)["input_ids"]
        out: list[list[int]] = []
        for ids in raw:
            kept = [i for i in ids if i not in self._strip_ids]
            if len(kept) > cap:  # keep the closing special token (</s> / [SEP]) when truncating
                kept = [*kept[: cap - 1], kept[-1]]
            out.append(kept)
        return out

    def _pad(self, batch: list[list[int]]) -> tuple[Any, Any]:
        # torch loads only when this runs, not when seq2seq is imported
        import torch

        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
        return input_ids, mask

    def embed_ids(self, batch: list[list[int]]) -> np.ndarray:
        """Mean-pooled, L2-normalised fp32 vectors of already tokenized inputs (one row per input)."""
        # torch loads only when this runs, not when seq2seq is imported
        import torch

        encoder = self.encoder
        _ = self.tokenizer
        input_ids, mask = self._pad(batch)
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            with autocast(self.resolved_precision, str(self.device)):
                output = encoder(
                    input_ids=input_ids,
                    attention_mask=mask,
                    output_hidden_states=self.layer is not None,
                    return_dict=True,
                )
            hidden = output.last_hidden_state if self.layer is None else output.hidden_states[self.layer]
            hidden = hidden.float()
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
        return pooled.cpu().numpy().astype(np.float32)

    def encode(
        self,
        texts: Sequence[str],
        *,
        prefix: str = "",
        max_length: int | None = None,
        batch_size: int = 32,
        show_progress: bool = True,
    ) -> np.ndarray:
        """Vectors of ``prefix + text`` for each text, in input order, shape ``(len(texts), dim)``.

        Batched longest first by :func:`polyret.encode.batching.encode_length_sorted`, the loop shared with the
        sentence-transformers encoder.
        """
        return encode_length_sorted(
            self, texts, prefix=prefix, max_length=max_length, batch_size=batch_size, show_progress=show_progress
        )


def _max_positions(config: Any) -> int | None:
    for attribute in ("max_position_embeddings", "n_positions"):
        value = getattr(config, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    encoder = getattr(config, "encoder", None)
    return _max_positions(encoder) if encoder is not None else None


def load_seq2seq_encoder(
    model: str | Path,
    *,
    max_length: int | None = None,
    layer: int | None = None,
    device: str | None = None,
    precision: str = DEFAULT_PRECISION,
    **_: Any,
) -> Seq2SeqEncoder:
    """Factory with the keyword shape of ``polyret.encode.encoder.load_encoder`` (pooling is fixed: mean)."""
    return Seq2SeqEncoder(model, layer=layer, max_length=max_length, device=device, precision=precision)


# -- target-language marking for translation training ------------------------------------------------------------
class LanguageTokens:
    """How a model family marks the target language, and how to build its training examples.

    * ``native``: mBART-cc25 (labels ``… </s> de_DE``, the model's shift puts ``de_DE`` first in the decoder),
      mBART-50 / M2M100 / NLLB (labels ``de_DE … </s>`` after a ``</s>`` decoder start): the tokenizer's
      ``tgt_lang`` does it.
    * ``tag``: models without language tokens (mT5, EncoderDecoderModel): labels ``<2de> … </s>`` with ``<2xx>``
      added to the vocabulary by :func:`ensure_language_tags`.

    In both cases the encoder input is the source text with its language token stripped, as in embedding.
    """

    def __init__(self, tokenizer: Any, model_type: str) -> None:
        self.tokenizer = tokenizer
        self.model_type = model_type
        self.scheme = "native" if model_type in MBART_TYPES | M2M_TYPES else "tag"
        self._strip_ids = language_token_ids(tokenizer)

    def code(self, lang: str) -> str:
        """The model's token (or tokenizer ``tgt_lang`` value) for an internal language code."""
        if self.scheme == "tag":
            return tag_token(lang)
        if self.model_type in MBART_TYPES:
            return mbart_code(lang)
        language = get_language(lang)
        vocab = self.tokenizer.get_vocab()
        candidates = [f"__{language.code}__", language.code, flores_code(language)]  # M2M100, then NLLB
        for candidate in candidates:
            if candidate in vocab or f"__{candidate}__" in vocab:
                return candidate
        raise PolyretError(
            f"the {self.model_type} tokenizer has no language token for {lang!r} (tried {', '.join(candidates)})"
        )

    def token_id(self, lang: str) -> int:
        code = self.code(lang)
        vocab = self.tokenizer.get_vocab()
        token = code if code in vocab else f"__{code}__"
        if token not in vocab:
            raise PolyretError(f"language token {code!r} is not in the tokenizer; run ensure_language_tags first")
        return int(vocab[token])

    def source_ids(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        raw = self.tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=max_length + 2)
        out = []
        for ids in raw["input_ids"]:
            kept = [i for i in ids if i not in self._strip_ids]
            out.append(kept if len(kept) <= max_length else [*kept[: max_length - 1], kept[-1]])
        return out

    def label_ids(self, texts: Sequence[str], lang: str, max_length: int) -> list[list[int]]:
        if self.scheme == "native":
            self.tokenizer.tgt_lang = self.code(lang)  # the tokenizer switches to target mode for text_target
            return [
                list(ids)
                for ids in self.tokenizer(text_target=list(texts), truncation=True, max_length=max_length)["input_ids"]
            ]
        tag = self.token_id(lang)
        eos = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else self.tokenizer.sep_token_id
        body = self.tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=max_length - 2)[
            "input_ids"
        ]
        return [[tag, *ids, eos] for ids in body]

    def generate_kwargs(self, lang: str) -> dict[str, int]:
        """Keyword arguments that force generation to begin with the target-language token."""
        token = self.token_id(lang)
        if self.model_type in MBART_TYPES and type(self.tokenizer).__name__ == "MBartTokenizer":
            return {"decoder_start_token_id": token}  # cc25: the language token *is* the decoder start
        return {"forced_bos_token_id": token}


def tag_token(lang: str) -> str:
    return f"<2{get_language(lang).code}>"


def ensure_language_tags(model: Any, tokenizer: Any, languages: Iterable[str]) -> bool:
    """Add ``<2xx>`` tokens for ``languages`` to a tag-scheme model's tokenizer and vocab; True if anything changed."""
    missing = [tag_token(lang) for lang in languages if tag_token(lang) not in tokenizer.get_vocab()]
    if not missing:
        return False
    tokenizer.add_tokens(sorted(set(missing)), special_tokens=True)
    size = len(tokenizer)
    if getattr(model.config, "model_type", "") in ENCODER_DECODER_TYPES:
        model.encoder.resize_token_embeddings(size)
        model.decoder.resize_token_embeddings(size)
        model.config.encoder.vocab_size = size
        model.config.decoder.vocab_size = size
    else:
        model.resize_token_embeddings(size)
    return True


# -- the offline stand-in ----------------------------------------------------------------------------------------
def _hf_dir(model_dir: Path) -> Path:
    """The folder holding a BERT-type ``config.json`` inside a sentence-transformers or Hugging Face model folder."""
    candidates = [model_dir, *sorted(p for p in model_dir.iterdir() if p.is_dir())]
    for candidate in candidates:
        config = candidate / "config.json"
        if config.is_file() and "model_type" in json.loads(config.read_text(encoding="utf-8")):
            return candidate
    raise ModelError(f"{model_dir}: no Hugging Face config.json found (expected a sentence-transformers folder)")


def _st_prompts(model_dir: Path) -> dict[str, str]:
    config = model_dir / "config_sentence_transformers.json"
    if not config.is_file():
        return {}
    return dict(json.loads(config.read_text(encoding="utf-8")).get("prompts") or {})


def build_standin(
    encoder_model: str | Path, target: str | Path, languages: Iterable[str] = (), *, force: bool = False
) -> Path:
    """Warm-start an ``EncoderDecoderModel`` from a BERT-type sentence encoder (both sides) and save it.

    The decoder gets cross-attention (random) and a language-model head tied to its input embeddings; ``<2xx>``
    tags for ``languages`` open the target. The saved folder carries a sidecar that labels it
    ``STAND_IN_LABEL`` and keeps the encoder's query/passage prefixes. Written to a temp dir and renamed.
    """
    # torch, transformers load only when this runs, not when seq2seq is imported
    import torch
    from transformers import EncoderDecoderModel

    destination = Path(target)
    if destination.is_dir() and (destination / SIDECAR).is_file() and not force:
        return destination
    source = Path(encoder_model)
    if not source.is_dir():
        raise ModelError(
            f"{encoder_model}: the CRISS stand-in needs a local BERT-type model folder "
            "(run `polyret models prepare multilingual-e5-small`)"
        )
    hf = _hf_dir(source)
    tokenizer = _load_tokenizer(hf)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(str(hf), str(hf), dtype=torch.float32)
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    model.config.decoder_start_token_id = start
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    model.config.vocab_size = model.config.decoder.vocab_size
    ensure_language_tags(model, tokenizer, languages)
    prompts = _st_prompts(source)

    def save(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        write_sidecar(
            staging,
            {
                "stand_in": True,
                "label": STAND_IN_LABEL,
                "base_model": str(source),
                "query_prefix": prompts.get("query", ""),
                "passage_prefix": prompts.get("passage", prompts.get("document", "")),
            },
        )

    return write_dir_atomically(destination, save)
