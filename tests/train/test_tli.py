import json
import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from scipy import stats
from sentence_transformers import SentenceTransformer

from polyret.data.words import WordPair, write_word_pairs_tsv
from polyret.errors import ConfigError
from polyret.train.tli import (
    TliConfig,
    add_lora,
    default_target_modules,
    hardest_negative_triplet_loss,
    measure_word_similarity,
    pair_scores,
    paired_comparison,
    parse_tli_config,
    run_tli,
    word_embeddings,
)

PAIRS = [
    WordPair(s, t)
    for s, t in [
        ("paka", "cat"),
        ("mbwa", "dog"),
        ("nyumba", "house"),
        ("maji", "water"),
        ("mti", "tree"),
        ("jua", "sun"),
        ("mkate", "bread"),
        ("kitabu", "book"),
        ("gari", "car"),
        ("mama", "mother"),
        ("baba", "father"),
        ("samaki", "fish"),
        ("ndege", "bird"),
        ("mlima", "mountain"),
        ("mto", "river"),
        ("chakula", "food"),
    ]
]


@pytest.fixture
def tiny_model(tiny_model_dir):
    return SentenceTransformer(str(tiny_model_dir), device="cpu")


@pytest.fixture
def pairs_tsv(tmp_path):
    path = tmp_path / "pairs.tsv"
    write_word_pairs_tsv(path, PAIRS)
    return path


def tli_config(model_dir, pairs_tsv, **overrides):
    settings = {
        "model": str(model_dir),
        "dictionary": str(pairs_tsv),
        "n_train": 12,
        "n_control": 4,
        "batch_size": 4,
        "epochs": 2,
        "lr": 1e-2,
        "device": "cpu",
        **overrides,
    }
    return TliConfig(**settings)


@pytest.mark.parametrize("layer", [1, 2])
def test_word_embedding_is_the_mean_of_the_words_tokens_at_layer_k(tiny_model, layer):
    tiny_model.eval()
    words = ["paka", "chakula kizuri"]  # different token counts, so the first is padded
    with torch.no_grad():
        got = word_embeddings(tiny_model, words, layer)
        for row, word in enumerate(words):
            ids = tiny_model[0].tokenizer(word, return_tensors="pt")
            hidden = tiny_model[0].auto_model(**ids, output_hidden_states=True).hidden_states
            # [CLS] word-tokens [SEP]: drop the first and last position by hand
            manual = hidden[layer][0, 1:-1].mean(dim=0)
            torch.testing.assert_close(got[row], manual)
            assert not torch.allclose(got[row], hidden[layer - 1][0, 1:-1].mean(dim=0))


def test_hardest_negative_triplet_loss_hand_case():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    positives = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # cos(anchor, positive): row 0 [1, 1, 0], row 1 [0, 0, 1], row 2 [.7071, .7071, .7071]
    # anchor 0: pos 1.0, negatives are columns 1, 2 -> hardest col 1 (1.0): max(0, (1-1) - (1-1) + .4) = .4
    # anchor 1: pos 0.0, hardest negative col 2 (1.0): max(0, 1 - 0 + .4) = 1.4
    # anchor 2: pos .7071, hardest negative .7071: .4
    loss = hardest_negative_triplet_loss(anchors, positives, ["a", "b", "c"], margin=0.4)
    assert loss.item() == pytest.approx((0.4 + 1.4 + 0.4) / 3, abs=1e-6)
    # a negative with the anchor's own target text is a false negative and is skipped: anchor 0 now gets col 2
    loss = hardest_negative_triplet_loss(anchors, positives, ["a", "a", "c"], margin=0.4)
    expected = [max(0.0, 0 - 1 + 0.4), max(0.0, 1 - 0 + 0.4), 0.4]
    assert loss.item() == pytest.approx(sum(expected) / 3, abs=1e-6)


def test_paired_comparison_hand_case_and_scipy():
    before, after = np.array([0.1, 0.2, 0.3]), np.array([0.2, 0.4, 0.6])  # deltas .1 .2 .3
    result = paired_comparison(before, after)
    assert result["mean_delta"] == pytest.approx(0.2)
    # t = mean / (sd / sqrt(n)) = .2 / (.1 / sqrt(3)); exact Wilcoxon: all 3 ranks positive, p = 2 / 2**3
    assert result["ttest_rel"]["statistic"] == pytest.approx(0.2 / (0.1 / math.sqrt(3)))
    assert result["ttest_rel"]["p_value"] == pytest.approx(stats.ttest_rel(after, before).pvalue)
    assert result["wilcoxon"]["p_value"] == pytest.approx(0.25)
    assert paired_comparison(before, before)["wilcoxon"] is None


def test_pair_scores_hand_case():
    matrix = np.array([[0.5, 0.1, 0.3], [0.6, 0.4, 0.2], [0.0, 0.0, 0.9]])
    scores = pair_scores(matrix)
    np.testing.assert_allclose(scores["cosine"], [0.5, 0.4, 0.9])
    np.testing.assert_allclose(scores["gap"], [0.5 - 0.2, 0.4 - 0.4, 0.9 - 0.0], atol=1e-12)
    np.testing.assert_array_equal(scores["top1"], [1.0, 0.0, 1.0])  # row 1's nearest target is 0


def test_default_target_modules_are_query_and_value_projections():
    assert default_target_modules("bert") == ["query", "value"]
    assert default_target_modules("xlm-roberta") == ["query", "value"]
    assert default_target_modules("llama") == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="target_modules"):
        default_target_modules("no-such-architecture")


def test_config_defaults_follow_the_paper_and_layers_must_feed_the_loss():
    config = TliConfig(language="swh")
    assert (config.language, config.loss_layer, config.adapted_layers) == ("sw", 2, [0, 1])
    assert (config.lora_r, config.lora_alpha, config.lr, config.batch_size, config.epochs, config.margin) == (
        16,
        32,
        2e-4,
        8,
        5,
        0.4,
    )
    assert config.warmup_steps == 50  # the official schedule: 50 warm-up steps, then linear decay
    with pytest.raises(ValidationError, match=r"must lie in 0\.\.1"):
        TliConfig(layers=[2])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"layers": [3]}, r"^cfg\.yaml: layers: layers \[3\] must lie in 0\.\.1"),
        ({"language": "zz"}, r"^cfg\.yaml: unknown language code"),
        ({"epochs": 0}, r"^cfg\.yaml: epochs: "),
        ({"no_such_key": 1}, r"^cfg\.yaml: no_such_key: "),
    ],
)
def test_config_mapping_problems_are_one_line_config_errors(payload, message):
    with pytest.raises(ConfigError, match=message):
        parse_tli_config({"method": "tli", **payload}, "cfg.yaml")


def test_lora_step_changes_only_the_chosen_layers_and_modules(tiny_model, tiny_model_dir, pairs_tsv):
    before = {name: tensor.clone() for name, tensor in tiny_model[0].auto_model.state_dict().items()}
    config = tli_config(tiny_model_dir, pairs_tsv, layers=[1], lora_dropout=0.0)
    peft_model = add_lora(tiny_model, config)
    trainable = [name for name, parameter in peft_model.named_parameters() if parameter.requires_grad]
    assert trainable and all("layer.1.attention.self." in name and "lora_" in name for name in trainable)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):  # LoRA's B starts at zero: the second step is the first to move the merged weights
        anchors = word_embeddings(tiny_model, [pair.source for pair in PAIRS[:4]], config.loss_layer)
        positives = word_embeddings(tiny_model, [pair.target for pair in PAIRS[:4]], config.loss_layer)
        hardest_negative_triplet_loss(anchors, positives, [pair.target for pair in PAIRS[:4]], 0.4).backward()
        optimizer.step()
        optimizer.zero_grad()
    after = peft_model.merge_and_unload().state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed == {"encoder.layer.1.attention.self.query.weight", "encoder.layer.1.attention.self.value.weight"}


def test_run_tli_writes_an_evaluable_model_and_the_measurement(tiny_model_dir, pairs_tsv, tmp_path):
    run_dir = tmp_path / "run"
    model_dir = run_tli(tli_config(tiny_model_dir, pairs_tsv), run_dir, resume=False)
    assert model_dir == run_dir / "model"
    report = json.loads((run_dir / "word_similarity.json").read_text())
    assert report["layer"] == 2 and report["adapted_layers"] == [0, 1]
    assert (report["train"]["n"], report["control"]["n"]) == (12, 4)
    train_words = {w for p in report["train"]["pairs"] for w in (p["source"], p["target"])}
    assert not train_words & {w for p in report["control"]["pairs"] for w in (p["source"], p["target"])}
    # the merged model reproduces the reported after-cosines, and the before-cosines come from the base model
    pairs = [WordPair(p["source"], p["target"]) for p in report["train"]["pairs"]]
    np.testing.assert_allclose(
        measure_word_similarity(str(model_dir), pairs, 2), [p["after"] for p in report["train"]["pairs"]], atol=1e-5
    )
    np.testing.assert_allclose(
        measure_word_similarity(str(tiny_model_dir), pairs, 2),
        [p["before"] for p in report["train"]["pairs"]],
        atol=1e-5,
    )
    assert (run_dir / "adapter" / "adapter_config.json").exists()
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    steps = state["schedule"]["last_epoch"]  # every step advanced the warm-up-then-linear-decay schedule
    assert steps > 0 and state["schedule"]["_last_lr"] == [0.0]  # decayed to zero at the last step
    vectors = SentenceTransformer(str(model_dir), device="cpu").encode(["paka analala"])
    assert vectors.shape == (1, 32)
    assert run_tli(tli_config(tiny_model_dir, pairs_tsv), run_dir, resume=True) == model_dir
    with pytest.raises(ConfigError, match="resume"):
        run_tli(tli_config(tiny_model_dir, pairs_tsv), run_dir, resume=False)


def test_resumed_run_equals_an_uninterrupted_run(tiny_model_dir, pairs_tsv, tmp_path, monkeypatch):
    run_tli(tli_config(tiny_model_dir, pairs_tsv), tmp_path / "whole", resume=False)
    interrupted = tmp_path / "interrupted"
    real_save, saved = torch.save, []

    def killed_after_the_first_checkpoint(*args, **kwargs):
        if saved:
            raise KeyboardInterrupt
        saved.append(real_save(*args, **kwargs))

    monkeypatch.setattr(torch, "save", killed_after_the_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        run_tli(tli_config(tiny_model_dir, pairs_tsv), interrupted, resume=False)
    monkeypatch.setattr(torch, "save", real_save)
    run_tli(tli_config(tiny_model_dir, pairs_tsv), interrupted, resume=True)
    whole = json.loads((tmp_path / "whole" / "word_similarity.json").read_text())
    resumed = json.loads((interrupted / "word_similarity.json").read_text())
    # both runs start fresh, so equality also needs the seeded LoRA initialisation
    assert whole["train"]["pairs"] == resumed["train"]["pairs"]
    assert any(pair["after"] != pair["before"] for pair in whole["train"]["pairs"])
