"""Sentence-transformers encoders behind the :class:`~polyret.encode.base.Encoder` protocol, and ``load_encoder``.

:class:`SentenceTransformerEncoder` runs any sentence-transformers folder or Hugging Face encoder (BERT, XLM-R,
LaBSE, the embedded multilingual-e5-small). It tokenizes every text once, sorts by token count so each batch
pads little, runs the transformer, pools (the model's own pooling, or ``mean`` / ``cls``, optionally from a
middle layer and optionally without the special tokens), applies any modules after pooling (LaBSE's Dense) and
returns float32 L2-normalised rows in input order. The model is loaded on first use, so an encoder whose
vectors all come from the embedding cache never loads its weights.

``load_encoder`` resolves a model name (:func:`polyret.encode.models.resolve_model`), picks the encoder kind from
a small registry (:data:`ENCODER_KINDS`; seq2seq models such as mBART go to ``polyret.encode.seq2seq``) and wraps
the result in the embedding cache.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from polyret.encode.base import Encoder
from polyret.encode.batching import encode_length_sorted
from polyret.encode.cache import CachedEncoder
from polyret.encode.identity import weights_fingerprint
from polyret.encode.models import cached_snapshot, resolve_model, revision_of
from polyret.errors import ConfigError, DataError, ModelError

log = logging.getLogger(__name__)

POOLINGS = ("mean", "cls")
# Prefixes of model families whose folders do not record them (the model cards ask for them).
KNOWN_PREFIXES: tuple[tuple[str, str, str], ...] = (("e5-", "query: ", "passage: "),)
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


# ------------------------------------------------------------------------------------- folder metadata (no torch)
@dataclass
class _FolderInfo:
    """What a sentence-transformers / Hugging Face folder says about itself, read from its JSON files."""

    prompts: dict[str, str]
    pooling: str | None  # the Pooling module's mode, None if unknown
    max_length: int | None
    dim: int | None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _token_limit(folder: Path) -> int | None:
    """The tokenizer's ``model_max_length`` capped by the model's positions (what sentence-transformers uses)."""
    limits = [
        v
        for v in (
            _read_json(folder / "config.json").get("max_position_embeddings"),
            _read_json(folder / "tokenizer_config.json").get("model_max_length"),
        )
        if isinstance(v, int) and 0 < v < 100_000
    ]
    return min(limits) if limits else None


def _folder_info(path: Path) -> _FolderInfo:
    prompts = {
        k: v
        for k, v in (_read_json(path / "config_sentence_transformers.json").get("prompts") or {}).items()
        if isinstance(v, str)
    }
    modules_file = path / "modules.json"
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8")) if modules_file.is_file() else None
    except (OSError, ValueError):
        modules = None
    if not isinstance(modules, list):  # a plain Hugging Face folder: sentence-transformers adds mean pooling
        return _FolderInfo(prompts, "mean", _token_limit(path), _read_json(path / "config.json").get("hidden_size"))
    pooling, dim, max_length = None, None, None
    for module in modules:
        kind = str(module.get("type", ""))
        folder = path / str(module.get("path", ""))
        config = _read_json(folder / "config.json")
        if kind.endswith(".Transformer"):
            max_length = _read_json(folder / "sentence_bert_config.json").get("max_seq_length") or _token_limit(folder)
            dim = config.get("hidden_size", dim)
        elif kind.endswith(".Pooling"):
            mode = config.get("pooling_mode")
            if mode is None:  # legacy boolean keys
                mode = [short for key, short in _LEGACY_POOLING_KEYS.items() if config.get(key)]
            modes = [mode] if isinstance(mode, str) else list(mode or [])
            pooling = modes[0] if len(modes) == 1 else None
            width = config.get("embedding_dimension") or config.get("word_embedding_dimension")
            dim = width * max(len(modes), 1) if isinstance(width, int) else None
        elif kind.endswith(".Dense"):
            dim = config.get("out_features")
        elif not kind.endswith(".Normalize"):
            dim = None  # an unknown module may change the width: ask the loaded model
    return _FolderInfo(
        prompts, pooling, max_length if isinstance(max_length, int) else None, dim if isinstance(dim, int) else None
    )


def default_prefixes(model: str, prompts: dict[str, str]) -> tuple[str, str]:
    """Query and passage prefixes: the folder's saved prompts, else the known ones of the model family."""
    query = prompts.get("query", "")
    passage = prompts.get("passage") or prompts.get("document") or prompts.get("corpus") or ""
    if not query and not passage:
        base = Path(str(model).rstrip("/")).name.lower()
        for marker, known_query, known_passage in KNOWN_PREFIXES:
            if marker in base:
                return known_query, known_passage
    return query, passage


# ------------------------------------------------------------------------------------------------ the encoder
class SentenceTransformerEncoder:
    """Encode with a sentence-transformers (or plain Hugging Face encoder) model; see the module docstring.

    Args:
        model: the name the user gave (recorded by :meth:`describe`).
        location: where to load from (a folder, or a Hugging Face id); default: ``resolve_model(model)``.
        max_length: token cap (default: the model's ``max_seq_length``); longer inputs are truncated.
        pooling: ``None`` for the model's own pooling, or ``"mean"`` / ``"cls"``.
        layer: ``None`` for the last layer, else the index into ``hidden_states`` (0 = embeddings, k = output of
            layer k, negative counts from the end), as in XTREME's middle-layer protocol.
        pool_special_tokens: include ``<s>`` / ``</s>`` / ``[CLS]`` / ``[SEP]`` in mean pooling (as the models do).
        device: ``"cuda"`` / ``"cpu"`` / ...; default cuda when available.
    """

    def __init__(
        self,
        model: str,
        location: Path | str | None = None,
        *,
        max_length: int | None = None,
        pooling: str | None = None,
        layer: int | None = None,
        pool_special_tokens: bool = True,
        device: str | None = None,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
    ) -> None:
        if pooling is not None and pooling not in POOLINGS:
            raise ConfigError(f"pooling {pooling!r} is not one of {', '.join(POOLINGS)} (or leave it unset)")
        if pooling == "cls" and not pool_special_tokens:
            raise ConfigError(
                "pooling 'cls' uses the [CLS]/<s> token; it cannot be combined with pool_special_tokens=False"
            )
        if max_length is not None and max_length < 2:
            raise ConfigError(f"max_length must be at least 2 tokens, got {max_length}")
        if location is None:
            location = resolve_model(model)
        elif isinstance(location, str) and Path(location).is_dir():
            location = Path(location)
        self.model_name = str(model)
        self.location = location
        self.pooling = pooling
        self.layer = layer
        self.pool_special_tokens = pool_special_tokens
        self.device = device
        self._max_length = max_length
        self._model: Any = None
        self._info = _folder_info(location) if isinstance(location, Path) else _FolderInfo({}, None, None, None)
        default_query, default_passage = default_prefixes(self.model_name, self._info.prompts)
        self.query_prefix: str = default_query if query_prefix is None else query_prefix
        self.passage_prefix: str = default_passage if passage_prefix is None else passage_prefix
        self._fingerprint: str | None = None

    # -- identity --------------------------------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        return {
            "kind": "sentence-transformers",
            "pooling": self.pooling or "native",
            "layer": self.layer,
            "max_length": self.max_length,
            "pool_special_tokens": self.pool_special_tokens,
            "normalize": True,
            "dtype": "float32",
        }

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            location = self.location
            if not isinstance(location, Path):  # a Hub id: identify the downloaded snapshot
                self._load()
                location = cached_snapshot(str(self.location)) or location
            self._fingerprint = weights_fingerprint(location, self._settings())
        return self._fingerprint

    @property
    def max_length(self) -> int:
        """The token cap used when ``encode`` is not given one."""
        if self._max_length is not None:
            return self._max_length
        if self._info.max_length is not None and self._model is None:
            return self._info.max_length
        return int(self._load().max_seq_length or 512)

    @property
    def dim(self) -> int:
        if self._info.dim is not None and self._model is None:
            return self._info.dim
        return int(self._load().get_embedding_dimension())

    @property
    def native_pooling(self) -> str | None:
        if self._model is None and self._info.pooling is not None:
            return self._info.pooling
        pooling = self._pooling_module()
        return None if pooling is None else str(pooling.pooling_mode)

    def describe(self) -> dict[str, object]:

        revision = revision_of(self.location) if isinstance(self.location, Path) else None
        return {
            "encoder": "sentence-transformers",
            "model": self.model_name,
            "path": str(self.location),
            "revision": revision,
            "query_prefix": self.query_prefix,
            "passage_prefix": self.passage_prefix,
            "pooling": self.pooling or self.native_pooling,
            "layer": "last" if self.layer is None else self.layer,
            "pool_special_tokens": self.pool_special_tokens,
            "max_length": self.max_length,
            "dim": self.dim,
            "normalize": True,
            "fingerprint": self.fingerprint,
        }

    # -- loading ----------------------------------------------------------------------------------------------
    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        # sentence_transformers, torch load only when this runs, not when encoder is imported
        import torch
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.base.modules import Transformer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            model = SentenceTransformer(str(self.location), device=device)
        except (OSError, ValueError) as err:
            raise ModelError(
                f"cannot load model {self.model_name!r} from {self.location}: "
                f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
            ) from err
        model.eval()
        if not isinstance(model[0], Transformer) or self._pooling_index(model) is None:
            kinds = ", ".join(type(module).__name__ for module in model)
            raise ModelError(
                f"{self.model_name}: unsupported module pipeline ({kinds}); polyret encodes models "
                "made of a Transformer, a Pooling and optional Dense/Normalize modules"
            )
        limit = model.max_seq_length
        if self._max_length is not None and limit is not None and self._max_length > limit:
            log.warning(
                "%s: max_length %d exceeds the model's limit %d; using %d",
                self.model_name,
                self._max_length,
                limit,
                limit,
            )
        self._model = model
        return model

    @staticmethod
    def _pooling_index(model: Any) -> int | None:
        # sentence_transformers loads only when this runs, not when encoder is imported
        from sentence_transformers.sentence_transformer.modules import Pooling

        return next((i for i, module in enumerate(model) if isinstance(module, Pooling)), None)

    def _pooling_module(self) -> Any:
        model = self._load()
        index = self._pooling_index(model)
        return None if index is None else model[index]

    # -- encoding ---------------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """Token ids (with the model's special tokens) of each text, truncated to ``max_length``."""
        model = self._load()
        cap = int(max_length or self.max_length)
        if model.max_seq_length:
            cap = min(cap, int(model.max_seq_length))
        return model.tokenizer(
            list(texts),
            truncation=True,
            max_length=cap,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]

    def encode(
        self,
        texts: Sequence[str],
        *,
        prefix: str = "",
        max_length: int | None = None,
        batch_size: int = 32,
        show_progress: bool = True,
    ) -> np.ndarray:
        """Vectors of ``prefix + text`` for each text, in input order: float32, L2-normalised, ``(n, dim)``."""
        return encode_length_sorted(
            self, texts, prefix=prefix, max_length=max_length, batch_size=batch_size, show_progress=show_progress
        )

    def embed_ids(self, batch: list[list[int]]) -> np.ndarray:
        """Pooled, L2-normalised float32 vectors of already tokenized inputs (one row per input)."""
        # torch loads only when this runs, not when encoder is imported
        import torch

        model = self._load()
        tokenizer = model.tokenizer
        width = max(len(ids) for ids in batch)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ids = np.full((len(batch), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        device = model.device
        input_ids = torch.from_numpy(ids).to(device)
        attention = torch.from_numpy(mask).to(device)
        pool_mask = attention
        if not self.pool_special_tokens:
            special = torch.from_numpy(np.isin(ids, tokenizer.all_special_ids)).to(device)
            pool_mask = attention * (~special).long()
        with torch.inference_mode():
            output = model[0].model(
                input_ids=input_ids,
                attention_mask=attention,
                output_hidden_states=self.layer is not None,
                return_dict=True,
            )
            hidden = output.last_hidden_state if self.layer is None else output.hidden_states[self.layer]
            pooled = self._pool(hidden.float(), pool_mask)
            features: dict[str, Any] = {"sentence_embedding": pooled}
            for module in list(model)[self._pooling_index(model) + 1 :]:
                if type(module).__name__ != "Normalize":
                    features = module(features)
            vectors = torch.nn.functional.normalize(features["sentence_embedding"].float(), p=2, dim=-1)
        return vectors.cpu().numpy().astype(np.float32, copy=False)

    def _pool(self, hidden: Any, mask: Any) -> Any:
        pooling = self.pooling or self.native_pooling
        if pooling == "cls":
            return hidden[:, 0]
        if pooling == "mean":
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        # another native mode (max, lasttoken, weightedmean, ...): the model's own Pooling module
        return self._pooling_module()({"token_embeddings": hidden, "attention_mask": mask})["sentence_embedding"]


# -------------------------------------------------------------------------------------------- kinds and factory
@dataclass(frozen=True)
class EncoderKind:
    """One kind of encoder: ``detect(location)`` says whether it handles a model; ``factory`` builds it.

    Both are ``"module:function"`` references, imported only when needed. A factory is called as
    ``factory(location, *, max_length, pooling, layer, device, pool_special_tokens, name)`` and must return an
    :class:`~polyret.encode.base.Encoder`; it may ignore options that do not apply to it.
    """

    name: str
    detect: str
    factory: str


def _reference(ref: str) -> Callable[..., Any]:
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _always(_: Path | str) -> bool:
    return True


def _sentence_transformer_factory(
    location: Path | str,
    *,
    name: str,
    max_length: int | None = None,
    pooling: str | None = None,
    layer: int | None = None,
    device: str | None = None,
    pool_special_tokens: bool = True,
) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(
        name,
        location,
        max_length=max_length,
        pooling=pooling,
        layer=layer,
        pool_special_tokens=pool_special_tokens,
        device=device,
    )


def _seq2seq_factory(
    location: Path | str, *, name: str, pooling: str | None = None, pool_special_tokens: bool = True, **options: Any
) -> Encoder:
    if pooling not in (None, "mean") or not pool_special_tokens:
        raise ConfigError(
            f"{name}: seq2seq encoders pool by mean over every token; pooling={pooling!r} and "
            "pool_special_tokens=False are not available for them"
        )
    return _reference("polyret.encode.seq2seq:load_seq2seq_encoder")(location, **options)


# Checked in order; the first kind whose detector accepts the model builds its encoder.
ENCODER_KINDS: list[EncoderKind] = [
    EncoderKind("seq2seq", "polyret.encode.seq2seq:is_seq2seq_model", "polyret.encode.encoder:_seq2seq_factory"),
    EncoderKind(
        "sentence-transformers",
        "polyret.encode.encoder:_always",
        "polyret.encode.encoder:_sentence_transformer_factory",
    ),
]


def encoder_kind(location: Path | str) -> EncoderKind:
    """The registered kind that handles ``location`` (a folder, or a Hub id whose config is fetched)."""
    probe: Path | str = location
    if not isinstance(location, Path):
        probe = _hub_config_dir(str(location)) or location
    for kind in ENCODER_KINDS:
        try:
            detect = _reference(kind.detect)
        except (ImportError, AttributeError):  # that kind's module is not part of this install
            continue
        if detect(probe):
            return kind
    raise ModelError(f"no encoder kind handles {location}")


def _hub_config_dir(repo_id: str) -> Path | None:
    try:
        # huggingface_hub loads only when this runs, not when encoder is imported
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id, "config.json")).parent
    except Exception:  # a repo without config.json (pure sentence-transformers) or no network: let the loader say
        return None


def load_encoder(
    model: str,
    *,
    max_length: int | None = None,
    pooling: str | None = None,
    layer: int | None = None,
    device: str | None = None,
    cache: bool = True,
    pool_special_tokens: bool = True,
) -> Encoder:
    """An encoder for ``model`` (embedded name, local folder or Hugging Face id), behind the embedding cache.

    ``pooling`` is ``None`` (the model's own), ``"mean"`` or ``"cls"``; ``layer`` selects ``hidden_states[layer]``
    instead of the last layer; ``cache=False`` encodes everything afresh (nothing read or written).
    """

    location = resolve_model(model)
    kind = encoder_kind(location)
    factory = _reference(kind.factory)
    encoder: Encoder = factory(
        location,
        name=str(model),
        max_length=max_length,
        pooling=pooling,
        layer=layer,
        device=device,
        pool_special_tokens=pool_special_tokens,
    )
    if cache:
        encoder = CachedEncoder(encoder)
    return encoder


# ------------------------------------------------------------------------------------------------ text inputs
def iter_records(path: str | Path) -> Iterator[tuple[str, str]]:
    """``(id, text)`` of a ``.txt`` file (one text per line; the id is the 0-based line index) or a ``.jsonl`` file
    (a ``"text"`` field per line; the id is an ``"id"`` field when there is one, else the line index), read lazily.

    An empty or blank text is a DataError naming its line (a blank line cannot be told from a missing text).
    """

    source = Path(path)
    if source.suffix not in (".txt", ".jsonl"):
        raise DataError.at(
            source, None, 'expected a .txt file (one text per line) or a .jsonl file (a "text" field per line)'
        )
    try:
        handle = source.open("rb")
    except FileNotFoundError as err:
        raise DataError.at(source, None, "file not found") from err
    with handle:
        for number, line in _numbered_lines(source, handle):
            item_id, text = str(number - 1), line
            if source.suffix == ".jsonl":
                item_id, text = _jsonl_record(source, number, line)
            if not text.strip():
                raise DataError.at(source, number, "empty text; remove the line (every line is one text to encode)")
            yield item_id, text


def _numbered_lines(source: Path, handle: IO[bytes]) -> Iterator[tuple[int, str]]:
    """Lines numbered as ``str.splitlines`` numbers them; each is decoded alone, so a decoding error names its line."""

    number = 0
    for raw in handle:
        try:
            physical = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError.at(source, number + 1, f"not UTF-8 text ({err.reason} at byte {err.start})") from err
        for line in physical.splitlines():
            number += 1
            yield number, line


def _jsonl_record(source: Path, number: int, line: str) -> tuple[str, Any]:

    if not line.strip():
        raise DataError.at(source, number, 'empty line; every line must be a JSON object with a "text"')
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError.at(source, number, f"malformed JSON: {err.msg} (column {err.colno})") from err
    if not isinstance(record, dict) or "text" not in record:
        raise DataError.at(source, number, 'a JSON object with a "text" field is required')
    text = record["text"]
    if not isinstance(text, str):
        raise DataError.at(source, number, f'"text" is {type(text).__name__}, not a string')
    item_id = record.get("id", number - 1)
    if not isinstance(item_id, str | int) or isinstance(item_id, bool):
        raise DataError.at(source, number, f'"id" is {type(item_id).__name__}, not a string or integer')
    return str(item_id), text


def read_texts(path: str | Path) -> list[str]:
    """All texts of a ``.txt`` or ``.jsonl`` file (see :func:`iter_records`), in file order."""
    return [text for _, text in iter_records(path)]
