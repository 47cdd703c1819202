"""BUCC evaluation on tiny files in the official format, with hand-placed vectors, and the BUCC-style task."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.lookup_encoder import LookupEncoder
from helpers.tatoeba_files import write_tatoeba_pair
from polyret.eval.bucc import build_bucc_style, evaluate_bucc, evaluate_bucc_style

DIM = 16


def basis(i: int, tilt: float = 0.0) -> list[float]:
    vector = [0.0] * DIM
    vector[i] = 1.0
    vector[15] = tilt  # translations: cos = 1/sqrt(1 + tilt^2) with their source
    return vector


def write_split(root: Path, split: str, xx: list[tuple[str, str]], en: list[tuple[str, str]], gold: list[str]) -> None:
    folder = root / "de-en"
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, lines in (("de", xx), ("en", en)):
        text = "".join(f"{ident}\t{sentence}\n" for ident, sentence in lines)
        (folder / f"de-en.{split}.{suffix}").write_text(text, encoding="utf-8")
    (folder / f"de-en.{split}.gold").write_text("".join(f"{line}\n" for line in gold), encoding="utf-8")


@pytest.fixture
def bucc_root(tmp_path: Path) -> Path:
    # dev: two true pairs and one unrelated sentence per side
    write_split(
        tmp_path,
        "sample",
        [("d1", "dev a"), ("d2", "dev b"), ("d3", "dev noise")],
        [("e1", "dev A"), ("e2", "dev B"), ("e3", "dev NOISE")],
        ["d1\te1", "d2\te2"],
    )
    # test: t0-u0 and t1-u1 are found; t2-u2 is a gold pair the model misses (orthogonal vectors); u3's text
    # carries two IDs (u3, u3b), so t3-u3 cannot be predicted; w-uw is a confident wrong pair
    write_split(
        tmp_path,
        "training",
        [("t0", "test a"), ("t1", "test b"), ("t2", "test c"), ("t3", "test d"), ("w", "test w")],
        [("u0", "test A"), ("u1", "test B"), ("u2", "test C"), ("u3", "test D"), ("u3b", "test D"), ("uw", "test W")],
        ["t0\tu0", "t1\tu1", "t2\tu2", "t3\tu3"],
    )
    return tmp_path


VECTORS = {
    "dev a": basis(0),
    "dev A": basis(0, 0.1),
    "dev b": basis(1),
    "dev B": basis(1, 0.1),
    "dev noise": basis(8),
    "dev NOISE": basis(9),
    "test a": basis(0),
    "test A": basis(0, 0.1),
    "test b": basis(1),
    "test B": basis(1, 0.1),
    "test c": basis(2),
    "test C": basis(6),
    "test d": basis(3),
    "test D": basis(3, 0.1),
    "test w": basis(4),
    "test W": basis(4, 0.1),
}


def test_hand_computed_precision_recall_f1(bucc_root: Path, tmp_path: Path) -> None:
    encoder = LookupEncoder(VECTORS, dim=DIM)
    result = evaluate_bucc(encoder, languages=["de"], root=bucc_root, output_dir=tmp_path / "out", show_progress=False)
    de = result.languages["de-Latn"]
    # predicted {t0-u0, t1-u1, w-uw}: P = 2/3, R = 2/4, F1 = 4/7
    assert de["precision"] == pytest.approx(100 * 2 / 3)
    assert de["recall"] == pytest.approx(50.0)
    assert de["f1"] == pytest.approx(100 * 4 / 7)
    assert de["dev.f1"] == pytest.approx(100.0)
    assert de["oracle.f1"] == pytest.approx(100 * 4 / 7)  # no threshold can drop w-uw without dropping a true pair
    assert de["n_gold"] == 4 and de["n_predicted"] == 3
    assert result.main_score.metric == "f1" and result.main_score.value == pytest.approx(de["f1"])
    assert all(prefix == "query: " for prefix, _ in encoder.calls)
    assert encoder.calls[2][1].count("test D") == 0 and encoder.calls[3][1].count("test D") == 1  # deduplicated
    saved = json.loads((tmp_path / "out" / "bucc.json").read_text(encoding="utf-8"))
    assert saved["task"] == "bucc" and saved["per_query"] == "bucc.per_query.npz"
    with np.load(tmp_path / "out" / "bucc.per_query.npz") as per_query:
        assert per_query["de-Latn/gold_found"].tolist() == [1, 1, 0, 0]  # sorted gold: t0, t1, t2, t3
        items = per_query["de-Latn/item_ids"].tolist()  # one item per gold pair
        assert items == [f"de-Latn/{pair}" for pair in per_query["de-Latn/query_ids"].tolist()] and len(set(items)) == 4


def write_tatoeba(root: Path) -> dict[str, list[float]]:
    """deu and fra pairs of 40 lines; fra's English repeats two of deu's English lines. Returns the vectors."""
    vectors: dict[str, list[float]] = {}
    rng = np.random.default_rng(0)
    for code in ("deu", "fra"):
        xx = [f"{code} satz {i}" for i in range(40)]
        en = [f"{code} english {i}" for i in range(40)]
        if code == "fra":
            en[:2] = ["deu english 0", "deu english 1"]
        for a, b in zip(xx, en, strict=True):
            vector = rng.standard_normal(64)
            vectors[a] = vector.tolist()
            vectors.setdefault(b, (vector + 0.2 * rng.standard_normal(64)).tolist())
        write_tatoeba_pair(root, code, xx, en)
    return vectors


def test_bucc_style_pools(tmp_path: Path) -> None:
    write_tatoeba(tmp_path)
    dev, test = build_bucc_style("de", n_parallel=5, n_distractors=8, seed=3, root=tmp_path)
    assert len(dev.gold) == len(test.gold) == 5
    assert len(dev.xx.ids) == len(test.xx.ids) == 13  # 5 parallel + 8 xx-only lines from the same half
    assert len(dev.en.ids) == len(test.en.ids) == 13  # 5 parallel + 8 English from the fra pair
    own_english = {f"deu english {i}" for i in range(40)}
    for split in (dev, test):
        distractors = [t for i, t in zip(split.en.ids, split.en.texts, strict=True) if i.split("-")[2][0] == "d"]
        assert distractors and not own_english & set(distractors)  # fra's copies of deu English are excluded
    dev_lines = {int(i[-5:]) for i in dev.xx.ids}
    test_lines = {int(i[-5:]) for i in test.xx.ids}
    assert not dev_lines & test_lines  # the halves are disjoint
    again = build_bucc_style("de", n_parallel=5, n_distractors=8, seed=3, root=tmp_path)
    assert again[0].xx.ids == dev.xx.ids  # seeded


def test_bucc_style_mines_the_hidden_pairs_back(tmp_path: Path) -> None:
    encoder = LookupEncoder(write_tatoeba(tmp_path), dim=64)
    result = evaluate_bucc_style(
        encoder, languages=["de", "fr"], n_parallel=6, n_distractors=10, root=tmp_path, show_progress=False
    )
    assert set(result.languages) == {"de-Latn", "fr-Latn"}  # BCP-47 keys
    for metrics in result.languages.values():
        assert metrics["f1"] == pytest.approx(100.0) and metrics["n_gold"] == 6
    assert result.task == "bucc-style" and result.config["n_parallel"] == 6
